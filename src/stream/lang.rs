//! Language per channel: fixed, or detected among an allowed set and locked once confident, so
//! a room with seven languages does not flip on every pause. Pure: told each utterance's
//! detection, it says which language to use.

/// How a channel's language is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanguageMode {
    Fixed(String),
    /// Detect among these codes (empty: any language Whisper knows), then lock.
    Detect(Vec<String>),
}

/// Detection results until the language locks.
#[derive(Debug, Clone)]
pub struct LanguageLock {
    mode: LanguageMode,
    locked: Option<String>,
    last: Option<String>,
    /// Probability at or above which one detection locks at once.
    pub sure: f32,
    /// Probability at or above which two detections in a row lock.
    pub likely: f32,
}

impl LanguageLock {
    pub fn new(mode: LanguageMode) -> LanguageLock {
        let locked = match &mode {
            LanguageMode::Fixed(l) => Some(l.clone()),
            LanguageMode::Detect(allowed) if allowed.len() == 1 => Some(allowed[0].clone()),
            LanguageMode::Detect(_) => None,
        };
        LanguageLock {
            mode,
            locked,
            last: None,
            sure: 0.8,
            likely: 0.5,
        }
    }

    /// The locked language, if any: decode with it and skip detection.
    pub fn locked(&self) -> Option<&str> {
        self.locked.as_deref()
    }

    /// The allowed set (empty: any).
    pub fn allowed(&self) -> &[String] {
        match &self.mode {
            LanguageMode::Fixed(_) => &[],
            LanguageMode::Detect(a) => a,
        }
    }

    /// Picks the most probable allowed language from Whisper's `(code, probability)` list,
    /// records it, and returns it (the language to decode this utterance in).
    pub fn observe(&mut self, probs: &[(String, f32)]) -> String {
        if let Some(l) = &self.locked {
            return l.clone();
        }
        let allowed = self.allowed();
        let candidates: Vec<&(String, f32)> = probs
            .iter()
            .filter(|(c, _)| allowed.is_empty() || allowed.contains(c))
            .collect();
        let total: f32 = candidates.iter().map(|(_, p)| p).sum();
        let Some((best, p)) = candidates
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, p)| (c.clone(), if total > 0.0 { p / total } else { 0.0 }))
        else {
            return "en".to_string();
        };
        let again = self.last.as_deref() == Some(best.as_str());
        if p >= self.sure || (again && p >= self.likely) {
            self.locked = Some(best.clone());
        }
        self.last = Some(best.clone());
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs(list: &[(&str, f32)]) -> Vec<(String, f32)> {
        list.iter().map(|(c, p)| (c.to_string(), *p)).collect()
    }

    #[test]
    fn fixed_never_detects() {
        let mut l = LanguageLock::new(LanguageMode::Fixed("es".into()));
        assert_eq!(l.locked(), Some("es"));
        assert_eq!(l.observe(&probs(&[("en", 0.99)])), "es");
    }

    #[test]
    fn locks_after_a_sure_detection_or_two_likely_ones() {
        let allowed = vec!["en".to_string(), "es".to_string(), "ru".to_string()];
        let mut l = LanguageLock::new(LanguageMode::Detect(allowed.clone()));
        assert_eq!(
            l.observe(&probs(&[("es", 0.55), ("en", 0.30), ("pt", 0.15)])),
            "es"
        );
        assert_eq!(l.locked(), None, "one likely detection is not enough");
        assert_eq!(l.observe(&probs(&[("es", 0.6), ("en", 0.4)])), "es");
        assert_eq!(l.locked(), Some("es"));
        // Once locked, a noisy detection does not flip it.
        assert_eq!(l.observe(&probs(&[("en", 0.9)])), "es");

        let mut l = LanguageLock::new(LanguageMode::Detect(allowed));
        // Portuguese is not allowed: renormalised among en/es/ru, Spanish is sure.
        assert_eq!(
            l.observe(&probs(&[("pt", 0.5), ("es", 0.45), ("en", 0.05)])),
            "es"
        );
        assert_eq!(l.locked(), Some("es"));
    }

    #[test]
    fn alternating_detections_do_not_lock() {
        let mut l = LanguageLock::new(LanguageMode::Detect(vec![]));
        for (c, p) in [("en", 0.6), ("es", 0.6), ("en", 0.6), ("es", 0.6)] {
            l.observe(&probs(&[(c, p), ("xx", 1.0 - p)]));
        }
        assert_eq!(l.locked(), None);
    }
}
