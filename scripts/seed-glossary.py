#!/usr/bin/env python3
"""Seeds glossaries/sex-work-rights.toml from the sourced research in
../shared/research/terminology.md (its term table, its equivalents tables and its
organisation tables), plus the curated rules below (context rules for misrecognitions that
are ordinary words, flag exceptions, preferred replacements per language).

Run once to (re)generate the seed; after that the TOML file is the glossary, edited by
hand and checked with `tolk glossary lint`. Every translation carries the source id the
research gives it, or none (a proposal).

    python3 scripts/seed-glossary.py ../shared/research/terminology.md > glossaries/sex-work-rights.toml
"""

import json
import re
import sys

LANGS = ["en", "es", "ru", "zh-Hant", "th", "bn", "hi", "uk", "nl", "sw", "fr", "pt"]
REQUIRED = ["en", "es", "ru", "zh-Hant", "th", "bn", "hi"]
COLS3 = ["en", "es", "ru", "uk", "zh-Hant", "th", "bn", "hi", "nl", "sw", "fr", "pt"]
CATS = {"CORE": "people", "PROG": "people", "FLAG": "flag", "LAW": "law", "ENF": "enforcement",
        "HLTH": "health", "EVT": "events"}

# Words that make a correction of an ordinary word plausible: the meeting's topic.
DOMAIN = ["sex work", "sex worker", "sex workers", "police", "law", "laws", "rights", "raid",
          "raids", "rescue", "trafficking", "brothel", "clients", "criminal", "criminalisation",
          "nordic", "model", "legal", "decriminalisation", "hiv", "network", "organisation",
          "community", "deportation", "migrants", "abolitionist"]

# Misrecognitions that need a narrower rule than "anywhere" (concept id, heard) -> rule.
RULES = {
    **{("E01", w): {"near": ["police", "rescue", "brothel", "brothels", "anti trafficking",
                             "operation", "night", "arrested", "detained", "venue", "bar",
                             "massage", "premises"], "unless": [], "window": 8}
       for w in ("rate", "raise", "ray", "rained")},
    ("L11", "traffic king"): {"to": "trafficking", "near": [], "unless": [], "window": 10},
    ("L11", "traffic in"): {"to": "trafficking", "near": ["sex work", "persons", "human",
                                                        "anti", "laws", "victims"],
                            "unless": [], "window": 6},
    ("L01", "discrimination"): {"near": ["sex work", "sex workers", "law", "laws", "nordic",
                                         "model", "legalisation", "criminal", "full", "partial",
                                         "new zealand", "campaign", "policy", "demand"],
                                "unless": ["stigma and discrimination",
                                           "discrimination and stigma",
                                           "discrimination against"], "window": 8},
}

# Flag exceptions: names and statutes that contain a flagged word (research §0, §5).
EXCEPTIONS = [
    ("es", "Asociación de Mujeres Meretrices de la Argentina"),
    ("en", "Prevention and Suppression of Prostitution Act"),
    ("en", "English Collective of Prostitutes"),
    ("en", "New Zealand Prostitutes' Collective"),
    ("en", "Taipei Association of Licensed Prostitutes"),
    ("en", "Prostitution Reform Act"),
    ("en", "living on the earnings of prostitution"),
    ("en", "Veshya Anyay Mukti Parishad"),
    ("hi", "वेश्या अन्याय मुक्ति परिषद"),
    ("pt", "Coletivo Puta Davida"),
    ("en", "Prostitutie Informatie Centrum"),
    ("nl", "Prostitutie Informatie Centrum"),
    ("th", "พระราชบัญญัติป้องกันและปราบปรามการค้าประเวณี"),
    ("en", "victims of trafficking"),
    ("en", "victim of trafficking"),
]

# What to say instead of a flagged term, per language (the concept giving the preferred term).
# Misrecognitions not to correct: real words of this meeting.
DROP_ASR = {"kiswahili", "invader", "proud", "swing", "sweat", "sharp", "cash", "who", "art",
            "tip", "tear", "vamp", "empower", "hark", "sweet", "swift", "prep", "pep",
            "pepper", "silver rose", "red umbrella fun(d)", "star star"}

# Organisation names and acronyms that are also ordinary words: matched only as written.
MATCH_CASE = {"WHO", "SHARP", "PROUD", "SWING", "SWEAT", "VAMP", "SWAN", "Empower Foundation",
              "EMPOWER", "Empower", "ART", "TIP", "AI", "KASH", "SWOP", "PIC", "HARC", "Davida",
              "STAR-STAR", "Silver Rose", "Sisonke", "SWIT", "SWN", "ECP", "CLM", "KP", "DIC"}

# Proposals (no source attests them): es, ru, zh-Hant, th, bn, hi.
PROPOSALS = {
 "C03": ["trabajadoras y trabajadores sexuales mujeres, hombres y trans", "секс-работники женщины, мужчины и трансгендерные люди", "女性、男性與跨性別性工作者", "พนักงานบริการหญิง ชาย และคนข้ามเพศ", "নারী, পুরুষ ও ট্রান্সজেন্ডার যৌনকর্মী", "महिला, पुरुष और ट्रांसजेंडर यौनकर्मी"],
 "C04": ["sexo comercial", "коммерческий секс", "商業性交易", "การขายบริการทางเพศ", "বাণিজ্যিক যৌনতা", "व्यावसायिक यौन सेवा"],
 "C07": ["trabajadoras sexuales en burdeles", "секс-работники в борделях", "在妓院工作的性工作者", "พนักงานบริการในสถานบริการ", "যৌনপল্লীভিত্তিক যৌনকর্মী", "कोठा-आधारित यौनकर्मी"],
 "C08": ["trabajadoras sexuales de calle", "уличные секс-работники", "街頭性工作者", "พนักงานบริการริมถนน", "ভাসমান যৌনকর্মী", "सड़क-आधारित यौनकर्मी"],
 "C10": ["trabajadoras del entretenimiento", "работники развлекательных заведений", "娛樂場所工作者", "พนักงานสถานบันเทิง", "বিনোদনকর্মী", "मनोरंजन कर्मी"],
 "C11": ["anfitrionas de bar", "хостес в барах", "酒吧女侍", "พนักงานต้อนรับในบาร์", "বার হোস্টেস", "बार होस्टेस"],
 "C13": ["sexo transaccional", "транзакционный секс", "交易性關係", "เพศสัมพันธ์แลกเปลี่ยน", "লেনদেনমূলক যৌন সম্পর্ক", "लेन-देन आधारित यौन संबंध"],
 "C15": ["comunidad", "сообщество", "社群", "ชุมชน", "কমিউনিটি", "समुदाय"],
 "C16": ["empoderamiento comunitario", "расширение прав и возможностей сообщества", "社群培力", "การเสริมพลังชุมชน", "কমিউনিটির ক্ষমতায়ন", "सामुदायिक सशक्तिकरण"],
 "C17": ["educadora de pares", "равный консультант", "同儕教育員", "อาสาสมัครเพื่อนช่วยเพื่อน", "পিয়ার এডুকেটর", "पीयर एजुकेटर"],
 "C18": ["agencia", "субъектность", "能動性", "การมีอำนาจตัดสินใจ", "নিজস্ব সিদ্ধান্তের ক্ষমতা", "स्वायत्तता"],
 "C19": ["autodeterminación", "самоопределение", "自主決定", "การกำหนดชีวิตตนเอง", "আত্মনিয়ন্ত্রণ", "आत्मनिर्णय"],
 "C20": ["participación significativa de las trabajadoras sexuales", "значимое участие секс-работников", "性工作者的實質參與", "การมีส่วนร่วมอย่างมีความหมายของพนักงานบริการ", "যৌনকর্মীদের অর্থবহ অংশগ্রহণ", "यौनकर्मियों की सार्थक भागीदारी"],
 "C21": ["paralegales", "параюристы", "法律扶助員", "ผู้ช่วยทางกฎหมาย", "প্যারালিগ্যাল", "पैरालीगल"],
 "C22": ["espacios seguros", "безопасные пространства", "安全空間", "พื้นที่ปลอดภัย", "নিরাপদ স্থান", "सुरक्षित स्थान"],
 "L03": ["criminalización", "криминализация", "入罪化", "การกำหนดให้เป็นความผิดทางอาญา", "অপরাধীকরণ", "अपराधीकरण"],
 "L04": [None, None, None, "โมเดลนอร์ดิก", "নর্ডিক মডেল", "नॉर्डिक मॉडल"],
 "L05": [None, None, None, "การลงโทษผู้ซื้อบริการ", "খদ্দেরদের অপরাধীকরণ", "ग्राहकों का अपराधीकरण"],
 "L06": ["criminalización de terceros", "криминализация третьих лиц", "第三方入罪", "การลงโทษบุคคลที่สาม", "তৃতীয় পক্ষের অপরাধীকরণ", "तृतीय पक्ष का अपराधीकरण"],
 "L07": [None, None, None, "แนวคิดยกเลิกการค้าประเวณี", "বিলোপবাদ", "उन्मूलनवाद"],
 "L08": ["despenalización administrativa", "депенализация", "行政除罰化", "การยกเลิกโทษทางปกครอง", "প্রশাসনিক দণ্ড বাতিল", "प्रशासनिक दंड समाप्ति"],
 "L09": ["merodeo", "приставание", "遊蕩", "การชักชวน", "ঘোরাফেরা", "आवारागर्दी"],
 "L10": ["Protocolo de Palermo", "Палермский протокол", "巴勒莫議定書", "พิธีสารปาแลร์โม", "পালের্মো প্রোটোকল", "पलेर्मो प्रोटोकॉल"],
 "L12": [None, None, None, "การเหมารวมงานบริการทางเพศกับการค้ามนุษย์", "যৌনকর্ম ও মানব পাচারকে এক করে দেখা", "यौन कार्य और मानव तस्करी को एक मानना"],
 "L14": ["leyes contra la trata", "законы о противодействии торговле людьми", "反人口販運法", "กฎหมายต่อต้านการค้ามนุษย์", "মানব পাচারবিরোধী আইন", "मानव तस्करी विरोधी कानून"],
 "L15": ["Informe sobre la Trata de Personas", "Доклад о торговле людьми", "人口販運問題報告", "รายงานการค้ามนุษย์", "মানব পাচার প্রতিবেদন", "मानव तस्करी रिपोर्ट"],
 "L16": ["el trabajo sexual es trabajo", "секс-работа — это работа", "性工作就是工作", "งานบริการทางเพศคืองาน", "যৌনকর্মও কাজ", "यौन कार्य भी काम है"],
 "L17": ["registro obligatorio", "обязательная регистрация", "強制登記", "การขึ้นทะเบียนบังคับ", "বাধ্যতামূলক নিবন্ধন", "अनिवार्य पंजीकरण"],
 "L18": ["zonas designadas", "специальные зоны", "性交易專區", "เขตพื้นที่เฉพาะ", "নির্ধারিত এলাকা", "निर्धारित क्षेत्र"],
 "L19": ["Ley de Mantenimiento del Orden Social", "Закон о поддержании общественного порядка", "社會秩序維護法", "พระราชบัญญัติรักษาความสงบเรียบร้อยของสังคม", "সামাজিক শৃঙ্খলা রক্ষা আইন", "सामाजिक व्यवस्था रखरखाव अधिनियम"],
 "L20": ["Kirguistán", "Кыргызстан", "吉爾吉斯", "คีร์กีซสถาน", "কিরগিজস্তান", "किर्गिस्तान"],
 "E02": ["allanamiento y rescate", "рейды и «спасение»", "臨檢與「拯救」", "การบุกจับและ \"ช่วยเหลือ\"", "অভিযান ও \"উদ্ধার\"", "छापा और \"बचाव\""],
 "E08": ["identificación de víctimas", "идентификация жертв", "被害人鑑別", "การคัดแยกเหยื่อ", "ভুক্তভোগী শনাক্তকরণ", "पीड़ित पहचान"],
 "E09": ["personas tratadas", "пострадавшие от торговли людьми", "人口販運被害人", "ผู้เสียหายจากการค้ามนุษย์", "পাচারের শিকার ব্যক্তি", "तस्करी से प्रभावित व्यक्ति"],
 "E12": ["violencia policial", "полицейское насилие", "警察暴力", "ความรุนแรงโดยตำรวจ", "পুলিশি সহিংসতা", "पुलिस हिंसा"],
 "E13": ["pruebas de VIH forzadas", "принудительное тестирование на ВИЧ", "強制愛滋檢測", "การบังคับตรวจเอชไอวี", "বাধ্যতামূলক এইচআইভি পরীক্ষা", "जबरन एचआईवी जांच"],
 "E15": ["financiamiento de donantes contra la trata", "донорское финансирование борьбы с торговлей людьми", "反人口販運的捐助資金", "เงินทุนผู้บริจาคเพื่อต่อต้านการค้ามนุษย์", "পাচারবিরোধী দাতা তহবিল", "तस्करी-विरोधी दाता निधि"],
 "E16": ["daños colaterales", "сопутствующий ущерб", "附帶傷害", "ความเสียหายข้างเคียง", "পার্শ্ব ক্ষতি", "अनपेक्षित क्षति"],
 "E17": ["no hacer daño", "не навреди", "不傷害原則", "ไม่ก่อให้เกิดอันตราย", "ক্ষতি না করা", "कोई नुकसान न पहुँचाना"],
 "E18": ["inspectores municipales", "муниципальные инспекторы", "市政稽查員", "เจ้าหน้าที่เทศกิจ", "পৌর পরিদর্শক", "नगर निगम निरीक्षक"],
 "H02": ["respuesta al sida", "ответные меры на СПИД", "愛滋防治", "การตอบสนองต่อเอดส์", "এইডস মোকাবিলা", "एड्स प्रतिक्रिया"],
 "H03": ["personas con VIH", "люди, живущие с ВИЧ", "愛滋感染者", "ผู้อยู่ร่วมกับเชื้อเอชไอวี", "এইচআইভি নিয়ে বসবাসকারী মানুষ", "एचआईवी के साथ जी रहे लोग"],
 "H08": ["tratamiento antirretroviral", "антиретровирусная терапия", "抗反轉錄病毒治療", "การรักษาด้วยยาต้านไวรัส", "অ্যান্টিরেট্রোভাইরাল থেরাপি", "एंटीरेट्रोवायरल थेरेपी"],
 "H09": ["prueba de VIH", "тестирование на ВИЧ", "愛滋篩檢", "การตรวจเอชไอวี", "এইচআইভি পরীক্ষা", "एचआईवी जांच"],
 "H10": ["programas de condones y lubricantes", "программы распространения презервативов и лубрикантов", "保險套與潤滑液計畫", "โครงการถุงยางอนามัยและสารหล่อลื่น", "কনডম ও লুব্রিকেন্ট কর্মসূচি", "कंडोम और लुब्रिकेंट कार्यक्रम"],
 "H11": ["sexo más seguro", "более безопасный секс", "更安全的性行為", "เพศสัมพันธ์ที่ปลอดภัยยิ่งขึ้น", "নিরাপদতর যৌনতা", "सुरक्षित यौन व्यवहार"],
 "H13": ["servicios dirigidos por la comunidad", "услуги, предоставляемые сообществом", "社群主導的服務", "บริการที่นำโดยชุมชน", "কমিউনিটি-নেতৃত্বাধীন সেবা", "समुदाय-नेतृत्व वाली सेवाएँ"],
 "H14": ["monitoreo dirigido por la comunidad", "мониторинг силами сообщества", "社群主導監測", "การติดตามโดยชุมชน", "কমিউনিটি-নেতৃত্বাধীন পর্যবেক্ষণ", "समुदाय-नेतृत्व वाली निगरानी"],
 "H15": ["salud y derechos sexuales y reproductivos", "сексуальное и репродуктивное здоровье и права", "性與生殖健康及權利", "สุขภาพและสิทธิทางเพศและอนามัยเจริญพันธุ์", "যৌন ও প্রজনন স্বাস্থ্য ও অধিকার", "यौन और प्रजनन स्वास्थ्य एवं अधिकार"],
 "H16": ["violencia contra las trabajadoras sexuales", "насилие в отношении секс-работников", "針對性工作者的暴力", "ความรุนแรงต่อพนักงานบริการ", "যৌনকর্মীদের প্রতি সহিংসতা", "यौनकर्मियों के विरुद्ध हिंसा"],
 "H18": ["Fondo Mundial", "Глобальный фонд", "全球基金", "กองทุนโลก", "গ্লোবাল ফান্ড", "ग्लोबल फंड"],
 "H19": ["SWIT", "SWIT", "SWIT", "SWIT", "SWIT", "SWIT"],
 "H20": ["recomendaciones de la OMS de 2012", "рекомендации ВОЗ 2012 года", "世界衛生組織2012年建議", "ข้อแนะนำขององค์การอนามัยโลกปี 2012", "বিশ্ব স্বাস্থ্য সংস্থার ২০১২ সালের সুপারিশ", "विश्व स्वास्थ्य संगठन की 2012 की सिफारिशें"],
 "V06": ["solo los derechos pueden detener los abusos", "только права могут остановить злоупотребления", "唯有權利能終止不公", "มีแต่สิทธิเท่านั้นที่หยุดความไม่ถูกต้องได้", "শুধু অধিকারই অন্যায় থামাতে পারে", "केवल अधिकार ही अन्याय रोक सकते हैं"],
 "V07": ["sálvennos de los salvadores", "спасите нас от спасателей", "從拯救者手中拯救我們", "ช่วยเราให้พ้นจากผู้ช่วยเหลือ", "উদ্ধারকারীদের হাত থেকে আমাদের বাঁচাও", "हमें बचाने वालों से बचाओ"],
 "V08": ["nada sobre nosotras sin nosotras", "ничего о нас без нас", "沒有我們的參與，不要做關於我們的決定", "ไม่มีอะไรเกี่ยวกับเราโดยไม่มีเรา", "আমাদের ছাড়া আমাদের নিয়ে কিছু নয়", "हमारे बिना हमारे बारे में कुछ नहीं"],
 # Flagged terms: the loaded form in each language (proposals), flagged with the reason of the English row.
 "F02": ["trabajadora sexual comercial", "коммерческие секс-работники", "商業性工作者", "พนักงานบริการทางเพศเชิงพาณิชย์", "বাণিজ্যিক যৌনকর্মী", "व्यावसायिक यौनकर्मी"],
 "F03": [None, None, None, "ผู้หญิงที่ถูกทำให้ค้าประเวณี", "পতিতাবৃত্তিতে বাধ্য নারী", "वेश्यावृत्ति में धकेली गई महिलाएं"],
 "F05": [None, None, None, "แขกผู้ซื้อบริการ", "যৌনক্রেতা", "सेक्स खरीदार"],
 "F06": ["chulo", "сутенёр", "皮條客", "แมงดา", "দালাল", "दलाल"],
 "F07": ["prostitución infantil", "детская проституция", "雛妓", "โสเภณีเด็ก", "শিশু পতিতা", "बाल वेश्या"],
 "F08": ["puta", None, "婊子", "กะหรี่", None, "रंडी"],
 "F09": [None, "торговля телом", None, "การค้าเนื้อหนัง", None, None],
 "F10": ["mujeres socialmente discapacitadas", "социально неполноценные женщины", "社會失能婦女", "ผู้หญิงที่พิการทางสังคม", "সামাজিক প্রতিবন্ধী নারী", "सामाजिक रूप से विकलांग महिलाएं"],
 "F11": ["grupos de alto riesgo", "группы высокого риска", "高危險群", "กลุ่มเสี่ยงสูง", "উচ্চ ঝুঁকিপূর্ণ গোষ্ঠী", "उच्च जोखिम समूह"],
 "F12": ["víctima del sida", "жертва СПИДа", "愛滋受害者", "เหยื่อเอดส์", "এইডস আক্রান্ত", "एड्स पीड़ित"],
 "F13": ["VIH/sida", "ВИЧ/СПИД", "愛滋病毒/愛滋病", "เอชไอวี/เอดส์", "এইচআইভি/এইডস", "एचआईवी/एड्स"],
 "F14": ["ETS", "ЗППП", "性病", "กามโรค", "যৌনরোগ", "गुप्त रोग"],
 "F15": ["sexo seguro", "безопасный секс", "安全性行為", "เซ็กซ์ปลอดภัย", "নিরাপদ যৌনতা", "सुरक्षित सेक्स"],
 "F16": ["lucha contra el sida", "борьба со СПИДом", "對抗愛滋", "การต่อสู้กับเอดส์", "এইডসের বিরুদ্ধে যুদ্ধ", "एड्स के खिलाफ जंग"],
 "F17": ["drogadicto", "наркоман", "毒蟲", "คนติดยา", "মাদকাসক্ত", "नशेड़ी"],
 "F18": ["programas de salida", "программы выхода", "離開性產業計畫", "โครงการออกจากอาชีพ", "পেশা ছাড়ার কর্মসূচি", "निकास कार्यक्रम"],
 "F19": ["despenalización parcial", "частичная декриминализация", "部分除罪化", "การยกเลิกโทษบางส่วน", "আংশিক অপরাধমুক্তকরণ", "आंशिक अपराधमुक्ति"],
 }

PROPOSAL_LANGS = ["es", "ru", "zh-Hant", "th", "bn", "hi"]

# Parse artefacts of the research tables: terms to drop, terms to rewrite.
DROP_TERMS = {"formal / informal", "Thailand", "Kenya", "full", "Prevention", "forced",
              "voluntary", "Durbar's 51 clinics", 'rehabilitation" as default goal',
              'living on the earnings " charges', 'legalisation" when speaker means decriminalisation',
              "Taiwan 性交易專區", "screening", "survivors", "clinics", "informal", "formal"}
DROP_BY_CONCEPT = {("L04", "partial decriminalisation"), ("L05", "criminalización"),
                   ("E14", "uitzetting"), ("E14", "expulsion"),
                   ("H18", "Global Fund"), ("H18", "PEPFAR"), ("V06", "Sex work is work")}
# Names people say that the research's canonical form does not show on its own.
ORG_EXTRA = {"Legalife-Ukraine": ["Legalife"]}
ORG_EXTRA_LANG = {"Legalife-Ukraine": [("ru", "Легалайф")]}

FIX_TERMS = {"US Trafficking in Persons  Report": "Trafficking in Persons Report",
             "brothel-based": "brothel-based sex workers"}

EXTRA_ASR = [
    # AMMAR said in Spanish comes out as the verb "amar" (to love): only near its topic.
    ("OAMMAR", "es", "Amar", "AMMAR", ["trabajadoras", "sexuales", "sindicato", "argentina",
                                      "organización", "secretaria"]),
    ("L01", "es", "discriminalización", "despenalización", []),
    ("OTAIS-PLUS", "ru", "Тайс Плюс", "Таис Плюс", []),
    ("OLEGALIFE-UKRAINE", "ru", "Легал лайф", "Легалайф", []),
    ("L01", "ru", "дискриминация", "декриминализация", ["секс-работ", "закон", "модель",
                                                         "полная", "легализация"]),
    ("H06", "th", "เพรพ", "เพร็พ", []),
    ("E01", "th", "บุกจัด", "การบุกจับ", ["ตำรวจ", "พนักงานบริการ", "ร้าน"]),
    ("L01", "zh-Hant", "出罪化", "除罪化", ["性工作", "性產業", "法"]),
    ("E01", "zh-Hant", "掃荒", "掃黃", []),
]

PREFER_FROM = {"F01": "C02", "F08": "C02", "F03": "C02", "F05": "C05", "F09": "C01",
               "F02": "C02", "F04": "C02"}


def clean(s):
    s = re.sub(r"\*+", "", s)
    s = s.replace("“", '"').replace("”", '"')
    return s.strip()


def sources_in(cell):
    """S-ids cited in a cell ("S2, S5, S40(SWAN)", "[S14][S26]", "S2–S6")."""
    out = []
    for m in re.finditer(r"S(\d+)(?:[–-]S(\d+))?", cell):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        for n in range(a, b + 1):
            sid = f"S{n}"
            if sid not in out:
                out.append(sid)
    return out


def quoted(cell):
    """Quoted phrases in a cell (the predicted misrecognitions)."""
    return [q.strip() for q in re.findall(r'"([^"]+)"', clean(cell)) if q.strip()]


def rows(lines, start, prefix=None):
    """Table rows of the table starting after line `start` (header + separator skipped)."""
    out = []
    i = start
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    i += 2
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        out.append(cells)
        i += 1
    return out


def split_terms(text):
    """Splits a preferred-term cell into terms: main forms, then short parenthesised ones."""
    text = clean(text)
    text = re.sub(r"\(s\)", "", text)
    paren = re.findall(r"\(([^()]*)\)", text)
    main = re.sub(r"\([^()]*\)", "", text)
    parts = []
    for chunk in re.split(r";| / | — ", main):
        chunk = chunk.strip().strip('"').strip()
        if chunk and len(chunk.split()) <= 6 and not chunk.startswith("e.g"):
            parts.append(chunk)
    extra = []
    for p in paren:
        for chunk in re.split(r";|, ", p):
            chunk = chunk.strip().strip('"').strip()
            if (chunk and len(chunk.split()) <= 4 and not re.search(r"\d{4}|e\.g|a\.k\.a", chunk)
                    and not chunk.startswith("=")
                    and not re.match(r"(of|in|as|for|the|if|when|see|keep|also|RU|NB)\b", chunk)):
                extra.append(re.sub(r"^a\.k\.a\.?\s*", "", chunk))
    seen, out = set(), []
    for t in parts + extra:
        t = t.strip(" .…")
        if len(t) < 2 or t.lower() in seen:
            continue
        seen.add(t.lower())
        out.append(t)
    return out


def split_cell3(cell):
    """An equivalents cell → [(term, source or None)]."""
    cell = clean(cell)
    if cell in ("—", "-", ""):
        return []
    out = []
    cell = ";".join(i for i in cell.split(";") if "(neutral)" not in i)
    cell = re.sub(r"\([^()]*\)", "", cell)
    for item in re.split(r";", cell):
        srcs = re.findall(r"\[(S\d+)~?[^\]]*\]", item)
        src = srcs[0] if srcs else None
        text = re.sub(r"\[[^\]]*\]", "", item)
        text = re.sub(r"\([^()]*\)", "", text)
        text = text.replace("«", "").replace("»", "").replace('"', "")
        for t in re.split(r",| / |/", text):
            t = t.strip()
            if t.startswith("-") or t.startswith("–"):
                continue
            t = t.strip(" .…–-")
            if len(t) < 2 or "—" in t or " – " in t:
                continue
            out.append((t, src))
    return out


RU_END = ["ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими", "ой", "ей", "ий", "ый", "ая",
          "яя", "ое", "ее", "ые", "ие", "ов", "ев", "ам", "ям", "ах", "ях", "ом", "ем", "ую",
          "юю", "ів", "ою", "єю", "і", "ї", "а", "я", "о", "е", "є", "и", "ы", "у", "ю", "ь", "й"]


def stem_key(text, lang):
    """Roughly the matcher's folding (src/glossary/fold.rs), to keep one term per folded form."""
    words = re.sub(r"[^\w]+", " ", text.lower()).split()
    out = []
    for w in words:
        if lang in ("ru", "uk") and len(w) > 4:
            for e in RU_END:
                if w.endswith(e) and len(w) - len(e) >= 3:
                    w = w[: -len(e)]
                    break
        elif lang in ("en", "es", "pt", "fr", "nl") and len(w) > 3 and w.endswith("s"):
            w = w[:-1]
        out.append(w)
    return " ".join(out)


def lang_of(text):
    for ch in text:
        o = ord(ch)
        if 0x0400 <= o <= 0x04FF:
            return "uk" if any(c in text for c in "іїєґ") else "ru"
        if 0x0E00 <= o <= 0x0E7F:
            return "th"
        if 0x0980 <= o <= 0x09FF:
            return "bn"
        if 0x0900 <= o <= 0x097F:
            return "hi"
        if 0x4E00 <= o <= 0x9FFF:
            return "zh-Hant"
    return None


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)


def main(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    sources = []
    for ln in lines:
        m = re.match(r"- \*\*(S\d+[a-z]?)\*\* (.*)", ln)
        if m:
            sid, rest = m.group(1), m.group(2)
            url = re.search(r"https?://\S+", rest)
            title = re.sub(r"https?://\S+", "", rest).strip(" ;.")
            sources.append((sid, clean(title)[:300].strip(" ;"), url.group(0).rstrip(").,;") if url else ""))
    known = {s[0] for s in sources}
    if "S40" not in known:
        sources.append(("S40", "Organisation pages cited in the research (terminology.md §1, S40)", ""))
        known.add("S40")
    for n in (41, 42, 43, 44):
        if f"S{n}" not in known:
            sources.append((f"S{n}", f"Research source S{n} (terminology.md §1)", ""))
            known.add(f"S{n}")

    concepts = {}  # id -> dict
    order = []

    def concept(cid, cat, definition, srcs):
        if cid not in concepts:
            concepts[cid] = {"id": cid, "category": cat, "definition": definition,
                             "sources": [s for s in srcs if s in known], "terms": [],
                             "asr": [], "priority": 100}
            order.append(cid)
        return concepts[cid]

    def add_term(c, lang, text, status="preferred", source=None, reason="", prefer=""):
        text = FIX_TERMS.get(text.strip(), text.strip())
        if not text or text in DROP_TERMS or (c["id"], text) in DROP_BY_CONCEPT:
            return
        for t in c["terms"]:
            if t["lang"] == lang and stem_key(t["text"], lang) == stem_key(text, lang):
                return
        if status == "flagged":
            # A flagged form belongs to one concept.
            for other in concepts.values():
                if any(t["lang"] == lang and t["status"] == "flagged"
                       and stem_key(t["text"], lang) == stem_key(text, lang) for t in other["terms"]):
                    return
        if status == "preferred" and any(t["lang"] == lang and t["status"] == "preferred"
                                         for t in c["terms"]):
            status = "admitted"
        c["terms"].append({"lang": lang, "text": text, "status": status,
                           "source": source if source in known else None,
                           "reason": reason, "prefer": prefer})

    def add_asr(c, heard, lang="en"):
        heard = heard.strip()
        if heard.lower() in DROP_ASR or "(" in heard:
            return
        if not heard or any(a["heard"].lower() == heard.lower() for a in c["asr"]):
            return
        h = heard.lower()
        if any(h in t["text"].lower() or h.rstrip("s") in t["text"].lower() for t in c["terms"]):
            return  # the term itself (or part of it), quoted beside its misrecognition
        rule = RULES.get((c["id"], heard.lower()))
        if rule is None:
            # A single ordinary word is only corrected near the meeting's topic.
            if re.fullmatch(r"[A-Za-z]+", heard):
                rule = {"near": DOMAIN, "unless": [], "window": 12}
            else:
                rule = {"near": [], "unless": [], "window": 10}
        c["asr"].append({"lang": lang, "heard": heard, "to": "", **rule})

    # §2: the English master table.
    for i, ln in enumerate(lines):
        if not ln.startswith("| ID |"):
            continue
        header = [h.strip() for h in ln.strip().strip("|").split("|")]
        for cells in rows(lines, i):
            cid = cells[0]
            if not re.fullmatch(r"[A-Z]\d\d", cid):
                continue
            if header[1].startswith("Term as spoken"):  # 2b: flagged terms
                c = concept(cid, "flag", clean(cells[3]), sources_in(cells[4]))
                show = clean(cells[2]).replace("(s)", "")
                spoken = clean(cells[1])
                # Terms in other scripts, in parentheses or «quotes»: flagged in their language.
                for inner in re.findall(r"\(([^()]*)\)", spoken) + re.findall(r"«([^»]*)»", spoken):
                    for piece in re.split(r",|;", inner):
                        piece = re.sub(r'\*[^*]*\*|"[^"]*"', "", piece).strip()
                        if lang_of(piece):
                            pl = lang_of(piece)
                            pc = concepts.get(PREFER_FROM.get(cid, ""))
                            prefer = next((t["text"] for t in (pc["terms"] if pc else [])
                                           if t["lang"] == pl and t["status"] == "preferred"), "")
                            add_term(c, pl, piece.split()[0] if pl == "bn" else piece,
                                     "flagged", c["sources"][0] if c["sources"] else None,
                                     clean(cells[3])[:200], prefer)
                spoken = re.sub(r"\([^()]*\)|«[^»]*»", "", spoken)
                for t in re.split(r";|, | / ", spoken):
                    t = t.strip().strip('"').strip()
                    if not t or lang_of(t) or re.search(r"pejoratives|euphemisms|Swahili|outside", t):
                        continue
                    if cid == "F12" and t in ("sufferer", "carrier"):
                        t = "AIDS " + t
                    add_term(c, "en", t, "flagged", c["sources"][0] if c["sources"] else None,
                             clean(cells[3])[:200], show.split(";")[0].strip())
                for q in quoted(cells[5]):
                    pass
            elif header[1] == "Term":  # 2f: days and symbols
                c = concept(cid, "events", clean(cells[2]), sources_in(cells[3]))
                for t in split_terms(cells[1])[:3]:
                    add_term(c, "en", t, "preferred", c["sources"][0] if c["sources"] else None)
                for q in quoted(cells[4]):
                    add_asr(c, q)
            elif header[1] == "Preferred (EN)":
                cat = CATS.get(cells[3], "people")
                c = concept(cid, cat, clean(cells[4]), sources_in(cells[5]))
                src = c["sources"][0] if c["sources"] else None
                for t in split_terms(cells[1]):
                    add_term(c, "en", t, "preferred", src)
                for q in quoted(cells[6]):
                    if q.lower() not in [t["text"].lower() for t in c["terms"]]:
                        add_asr(c, q)
                avoid = clean(cells[2])
                if avoid not in ("—", "-", ""):
                    c["definition"] += f" Avoid: {avoid}"

    # §3: equivalents.
    for i, ln in enumerate(lines):
        if not (ln.startswith("| ID | EN |") or ln.startswith("| ID | EN (flag)")):
            continue
        for cells in rows(lines, i):
            ids = cells[0].split("/")
            targets = [x for x in ids if x in concepts]
            if not targets:
                continue
            for col, lang in enumerate(COLS3, start=1):
                if col >= len(cells):
                    break
                items = split_cell3(cells[col])
                if lang == "en":
                    continue
                if len(targets) == 2:
                    # "PrEP / PEP" rows: first half to the first concept.
                    half = (len(items) + 1) // 2
                    groups = [items[:half], items[half:]]
                else:
                    groups = [items]
                for cid, group in zip(targets, groups):
                    c = concepts[cid]
                    flag = c["category"] == "flag"
                    for text, src in group:
                        if flag:
                            prefer_c = concepts.get(PREFER_FROM.get(cid, ""), None)
                            prefer = ""
                            if prefer_c:
                                prefer = next((t["text"] for t in prefer_c["terms"]
                                               if t["lang"] == lang and t["status"] == "preferred"), "")
                            reason = next((t["reason"] for t in c["terms"] if t["lang"] == "en"), "")
                            add_term(c, lang, text, "flagged", src, reason, prefer)
                        else:
                            add_term(c, lang, text, "preferred", src)

    # §4: organisations.
    org_n = 0
    for i, ln in enumerate(lines):
        if not (ln.startswith("| Canonical |") or ln.startswith("| Country | Canonical |")):
            continue
        country = ln.startswith("| Country")
        for cells in rows(lines, i):
            if country:
                cells = cells[1:]
            canon = clean(cells[0])
            if canon.startswith("People frequently") or "see 4b" in " ".join(cells):
                continue
            expansion = clean(cells[1]) if len(cells) > 1 else ""
            srcs = sources_in(" ".join(cells[2:4])) if len(cells) > 3 else sources_in(cells[-1])
            asr = quoted(cells[5]) if len(cells) > 5 else []
            names = [n.strip() for n in re.split(r";|, (?=[A-Z])", re.sub(r"\([^()]*\)", "", canon))]
            names = [n for n in names if n and n != "—"]
            multi = len(names) > 1
            for k, name in enumerate(names):
                org_n += 1
                parts = [p.strip() for p in re.split(r" / | → ", name) if p.strip()]
                cid = "O" + re.sub(r"[^A-Za-z0-9]+", "-", parts[0]).strip("-").upper()[:24]
                if cid in concepts:
                    cid += f"-{org_n}"
                c = concept(cid, "org", "", srcs)
                c["priority"] = 10 + org_n
                for extra in ORG_EXTRA.get(parts[0], []):
                    add_term(c, "en", extra, "preferred", srcs[0] if srcs else None)
                for p in parts:
                    add_term(c, "en", p, "preferred" if p == parts[0] else "admitted",
                             srcs[0] if srcs else None)
                if not multi and expansion and expansion != "—":
                    exp = re.sub(r"\([^()]*\)", "", expansion)
                    for chunk in re.split(r";| — | / ", exp):
                        chunk = re.sub(r"^(RU|CO|Thai):?\s*", "", chunk.strip())
                        chunk = chunk.replace("«", "").replace("»", "").replace('"', "").strip()
                        chunk = re.split(r",\s+(?=[a-z])", chunk)[0].strip()
                        if not chunk or not (chunk[0].isupper() or lang_of(chunk)) or ":" in chunk:
                            continue
                        if not chunk or "not confirmed" in chunk or "verify" in chunk:
                            continue
                        if chunk.startswith("see ") or len(chunk) > 90:
                            continue
                        lang = lang_of(chunk) or "en"
                        chunk = re.sub(r"^(RU|CO|Thai):\s*", "", chunk).replace("«", "").replace("»", "")
                        add_term(c, lang, chunk.strip(), "admitted",
                                 srcs[0] if srcs else None)
                    c["definition"] = expansion[:300]
                    for pp in re.findall(r"\(([^()]*)\)", expansion):
                        if lang_of(pp):
                            pp = re.sub(r"^RU\s+", "", pp.split(";")[0].strip())
                            pp = pp.replace("«", "").replace("»", "").strip()
                            add_term(c, lang_of(pp), pp, "admitted", srcs[0] if srcs else None)
                for lang, extra in ORG_EXTRA_LANG.get(parts[0], []):
                    add_term(c, lang, extra, "admitted", srcs[0] if srcs else None)
                if not multi:
                    for q in asr:
                        add_asr(c, q)

    # Proposals for the required languages the research leaves empty.
    for cid, texts in PROPOSALS.items():
        c = concepts.get(cid)
        if c is None:
            continue
        en_flag = next((t for t in c["terms"] if t["lang"] == "en" and t["status"] == "flagged"), None)
        for lang, text in zip(PROPOSAL_LANGS, texts):
            if text is None or any(t["lang"] == lang for t in c["terms"]):
                continue
            if c["category"] == "flag":
                pc = concepts.get(PREFER_FROM.get(cid, ""))
                prefer = next((t["text"] for t in (pc["terms"] if pc else [])
                               if t["lang"] == lang and t["status"] == "preferred"), "")
                add_term(c, lang, text, "flagged", None, en_flag["reason"] if en_flag else "", prefer)
            else:
                add_term(c, lang, text, "preferred", None)

    # Misrecognitions predicted for the other languages (proposals, like the research's
    # English ones: to be confirmed on recordings of the speakers).
    for cid, lang, heard, to, near in EXTRA_ASR:
        c = concepts.get(cid)
        if c is not None:
            c["asr"].append({"lang": lang, "heard": heard, "to": to, "near": near,
                             "unless": [], "window": 10})

    # A "misrecognition" that is some concept's term spelled another way is a variant the
    # matcher already folds together: not a correction.
    all_en = {stem_key(t["text"], "en") for c in concepts.values() for t in c["terms"]
              if t["lang"] == "en"}
    for c in concepts.values():
        c["asr"] = [a for a in c["asr"] if stem_key(a["heard"], "en") not in all_en]

    out = []
    w = out.append
    w("# Sex workers' health and human rights: the meeting's terminology.")
    w("# Seeded by scripts/seed-glossary.py from ../shared/research/terminology.md, then edited")
    w("# by hand. Schema: glossaries/README.md. Check with `tolk glossary lint`.")
    w("# A term with a `source` is attested there; a term without one is a PROPOSAL, to be")
    w("# checked by the booth of that language before it is trusted.")
    w("")
    w("[glossary]")
    w('id = "sex-work-rights"')
    w("title = \"Sex workers' health and human rights\"")
    w("languages = [" + ", ".join(toml_str(l) for l in REQUIRED) + "]")
    w("")
    for sid, title, url in sources:
        w("[[source]]")
        w(f"id = {toml_str(sid)}")
        w(f"title = {toml_str(title)}")
        if url:
            w(f"url = {toml_str(url)}")
        w("")
    for lang, text in EXCEPTIONS:
        w("[[exception]]")
        w(f"lang = {toml_str(lang)}")
        w(f"text = {toml_str(text)}")
        w("")
    for cid in order:
        c = concepts[cid]
        if not c["terms"]:
            continue
        w("[[concept]]")
        w(f"id = {toml_str(c['id'])}")
        w(f"category = {toml_str(c['category'])}")
        if c["priority"] != 100:
            w(f"priority = {c['priority']}")
        if c["definition"]:
            w(f"definition = {toml_str(c['definition'])}")
        if c["sources"]:
            w("sources = [" + ", ".join(toml_str(s) for s in c["sources"]) + "]")
        for t in c["terms"]:
            fields = [f"lang = {toml_str(t['lang'])}", f"text = {toml_str(t['text'])}"]
            if t["status"] != "preferred":
                fields.append(f"status = {toml_str(t['status'])}")
            if t["source"]:
                fields.append(f"source = {toml_str(t['source'])}")
            if t["reason"]:
                fields.append(f"reason = {toml_str(t['reason'])}")
            if t["prefer"]:
                fields.append(f"prefer = {toml_str(t['prefer'])}")
            if t["text"] in MATCH_CASE:
                fields.append("match_case = true")
            w("term = " if False else "[[concept.term]]")
            for f in fields:
                w(f)
        for a in c["asr"]:
            w("[[concept.asr]]")
            w(f"lang = {toml_str(a['lang'])}")
            w(f"heard = {toml_str(a['heard'])}")
            if a["to"]:
                w(f"to = {toml_str(a['to'])}")
            if a["near"]:
                w("near = [" + ", ".join(toml_str(n) for n in a["near"]) + "]")
            if a["unless"]:
                w("unless = [" + ", ".join(toml_str(n) for n in a["unless"]) + "]")
            if a["window"] != 10:
                w(f"window = {a['window']}")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/research/terminology.md")
