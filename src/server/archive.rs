//! The meeting archive: every final of every channel in one SQLite file.
//!
//! WAL journal with `synchronous = FULL`: a transaction that returned is on disk, so a final
//! the server has sent (the writer publishes only after its commit) survives `kill -9` and a
//! power cut. One connection, owned by one writer thread ([`super::pipeline`]); readers
//! (exports) open their own. Migrations are append-only: each runs once, in order, and
//! `PRAGMA user_version` says how many have.
//!
//! Encryption at rest (optional): with the organizer's key (`TOLK_ARCHIVE_KEY`, an
//! environment variable so that it shows in no process list), the words of every final —
//! its text, the raw text and the glossary annotations — are sealed with ChaCha20-Poly1305
//! under a key derived from it with Argon2id (a random salt kept in the file), a fresh random
//! nonce per field. The channel, numbers, times and language stay readable (they order and
//! find the finals). An archive is sealed from its first final or never; opening a sealed one
//! without its key, or with another, is refused, saying so.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::wire::{Annotations, Final};

/// The schema, one step per entry. Never edit a step that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE finals (
        meeting   TEXT    NOT NULL,
        channel   TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        start     REAL    NOT NULL,
        end       REAL    NOT NULL,
        wall_ms   INTEGER NOT NULL,
        language  TEXT    NOT NULL,
        text      TEXT    NOT NULL,
        raw_text  TEXT    NOT NULL,
        glossary  TEXT    NOT NULL,
        PRIMARY KEY (meeting, channel, seq)
    ) WITHOUT ROWID;
    CREATE INDEX finals_wall ON finals (wall_ms);",
    // The last seq given while off the record (the finals are not stored, their numbers
    // are: a restarted server must not give them again).
    "CREATE TABLE seqs (
        meeting   TEXT    NOT NULL,
        channel   TEXT    NOT NULL,
        last_seq  INTEGER NOT NULL,
        PRIMARY KEY (meeting, channel)
    ) WITHOUT ROWID;",
    // Whether the archive is sealed: the key's salt and a sealed check value.
    "CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;",
];

/// The environment variable holding the organizer's archive key.
pub const KEY_VAR: &str = "TOLK_ARCHIVE_KEY";

/// The prefix of a sealed field.
const SEALED: &str = "sealed1:";

/// What a key must open to be the archive's.
const CHECK: &str = "tolk archive key check";

/// Seals and opens an archive's fields (see the module doc).
struct Sealer {
    cipher: chacha20poly1305::ChaCha20Poly1305,
}

impl Sealer {
    fn derive(passphrase: &str, salt: &[u8]) -> Result<Sealer, String> {
        use chacha20poly1305::KeyInit;
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), salt, &mut key)
            .map_err(|e| format!("cannot derive the archive key: {e}"))?;
        Ok(Sealer {
            cipher: chacha20poly1305::ChaCha20Poly1305::new(&key.into()),
        })
    }

    fn seal(&self, plain: &str) -> Result<String, String> {
        use chacha20poly1305::aead::Aead;
        let nonce = random::<12>()?;
        let sealed = self
            .cipher
            .encrypt(&nonce.into(), plain.as_bytes())
            .map_err(|_| "cannot seal a final".to_string())?;
        Ok(format!(
            "{SEALED}{}{}",
            hex::encode(nonce),
            hex::encode(sealed)
        ))
    }

    /// The plain text of a field, `None` if this key does not open it.
    fn open(&self, stored: &str) -> Option<String> {
        use chacha20poly1305::aead::Aead;
        let bytes = hex::decode(stored.strip_prefix(SEALED)?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(<[u8; 12]>::try_from(nonce).ok()?.as_ref().into(), sealed)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// N random bytes from the kernel.
fn random<const N: usize>() -> Result<[u8; N], String> {
    use std::io::Read;
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf)
}

/// Why the archive failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("archive {path}: schema version {found} is newer than this tolk knows ({known}); use a newer tolk")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("archive {path}: {why}")]
    Key { path: PathBuf, why: String },
}

pub struct Archive {
    conn: Connection,
    path: PathBuf,
    sealer: Option<Sealer>,
}

impl Archive {
    /// Opens (creating if needed) the archive at `path` with the organizer's key from
    /// [`KEY_VAR`], if set (see the module doc), and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let key = std::env::var(KEY_VAR).ok();
        Archive::open_keyed(path, key.as_deref())
    }

    /// [`Archive::open`] with this key (`None` or empty: none).
    pub fn open_keyed(path: &Path, key: Option<&str>) -> Result<Archive, ArchiveError> {
        let mut a = Archive::open_plain(path)?;
        let key = key.filter(|k| !k.is_empty());
        let refuse = |why: String| ArchiveError::Key {
            path: path.to_path_buf(),
            why,
        };
        let stored: Option<String> = a
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'seal'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| a.err(e))?;
        match (key, stored) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(refuse(format!(
                    "it is encrypted: set {KEY_VAR} to the organizer's key"
                )))
            }
            (Some(k), Some(seal)) => {
                let (salt, check) = seal
                    .split_once(':')
                    .ok_or_else(|| refuse("its key record is damaged".into()))?;
                let salt =
                    hex::decode(salt).map_err(|_| refuse("its key record is damaged".into()))?;
                let sealer = Sealer::derive(k, &salt).map_err(refuse)?;
                if sealer.open(check).as_deref() != Some(CHECK) {
                    return Err(refuse(format!("{KEY_VAR} is not this archive's key")));
                }
                a.sealer = Some(sealer);
            }
            (Some(k), None) => {
                let plain: i64 = a
                    .conn
                    .query_row("SELECT COUNT(*) FROM finals", [], |r| r.get(0))
                    .map_err(|e| a.err(e))?;
                if plain > 0 {
                    return Err(refuse(format!(
                        "it holds {plain} unencrypted final(s): an archive is encrypted from the start or not at all; use a new archive file, or unset {KEY_VAR}"
                    )));
                }
                let salt = random::<16>().map_err(refuse)?;
                let sealer = Sealer::derive(k, &salt).map_err(refuse)?;
                let check = sealer.seal(CHECK).map_err(refuse)?;
                a.conn
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('seal', ?1)",
                        params![format!("{}:{check}", hex::encode(salt))],
                    )
                    .map_err(|e| a.err(e))?;
                a.sealer = Some(sealer);
            }
        }
        Ok(a)
    }

    /// Whether the words are sealed (the archive has a key).
    pub fn sealed(&self) -> bool {
        self.sealer.is_some()
    }

    fn open_plain(path: &Path) -> Result<Archive, ArchiveError> {
        let err = |source| ArchiveError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the archive's file system does not support WAL");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let mut a = Archive {
            conn,
            path: path.to_path_buf(),
            sealer: None,
        };
        a.migrate()?;
        Ok(a)
    }

    fn err(&self, source: rusqlite::Error) -> ArchiveError {
        ArchiveError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), ArchiveError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version as usize > MIGRATIONS.len() {
            return Err(ArchiveError::TooNew {
                path: self.path.clone(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| ArchiveError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(step)
                .and_then(|_| tx.pragma_update(None, "user_version", (i + 1) as i64))
                .and_then(|_| tx.commit())
                .map_err(|e| ArchiveError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// Appends finals in one transaction; when it returns `Ok`, they are on disk.
    pub fn append(&mut self, meeting: &str, finals: &[Final]) -> Result<(), ArchiveError> {
        // Out of `self` while `each_final` borrows it.
        let sealer = self.sealer.take();
        let written = self.each_final(
            "INSERT OR REPLACE INTO finals
             (meeting, channel, seq, start, end, wall_ms, language, text, raw_text, glossary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            finals,
            |stmt, f| {
                let glossary = serde_json::to_string(&f.glossary).unwrap_or_else(|_| "{}".into());
                let (text, raw_text, glossary) = match &sealer {
                    None => (f.text.clone(), f.raw_text.clone(), glossary),
                    Some(s) => {
                        let seal = |t: &str| {
                            s.seal(t)
                                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
                        };
                        (seal(&f.text)?, seal(&f.raw_text)?, seal(&glossary)?)
                    }
                };
                stmt.execute(params![
                    meeting,
                    f.channel,
                    f.seq as i64,
                    f.start,
                    f.end,
                    f.wall_ms as i64,
                    f.language,
                    text,
                    raw_text,
                    glossary
                ])
            },
        );
        self.sealer = sealer;
        written
    }

    /// Notes the numbers of finals that are not stored (off the record): only each channel's
    /// highest seq, nothing of what was said.
    pub fn note_seqs(&mut self, meeting: &str, finals: &[Final]) -> Result<(), ArchiveError> {
        self.each_final(
            "INSERT INTO seqs (meeting, channel, last_seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (meeting, channel) DO UPDATE
             SET last_seq = MAX(last_seq, excluded.last_seq)",
            finals,
            |stmt, f| stmt.execute(params![meeting, f.channel, f.seq as i64]),
        )
    }

    /// Runs `sql` once per final (`run` binds it) in one transaction; when it returns `Ok`,
    /// every row is on disk.
    fn each_final(
        &mut self,
        sql: &str,
        finals: &[Final],
        run: impl Fn(&mut rusqlite::Statement<'_>, &Final) -> rusqlite::Result<usize>,
    ) -> Result<(), ArchiveError> {
        let path = self.path.clone();
        let err = |source| ArchiveError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx.prepare_cached(sql).map_err(err)?;
            for f in finals {
                run(&mut stmt, f).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// A channel's finals in order (all meetings' if `meeting` is `None`).
    pub fn finals(&self, meeting: Option<&str>, channel: &str) -> Result<Vec<Final>, ArchiveError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT channel, seq, start, end, wall_ms, language, text, raw_text, glossary
                 FROM finals WHERE channel = ?1 AND (?2 IS NULL OR meeting = ?2)
                 ORDER BY wall_ms, seq",
            )
            .map_err(|e| self.err(e))?;
        // A sealed field this key cannot open (the file was tampered with): refused, saying
        // which final.
        let open = |stored: String, seq: i64| -> rusqlite::Result<String> {
            match (&self.sealer, stored.starts_with(SEALED)) {
                (Some(s), true) => s.open(&stored).ok_or_else(|| {
                    rusqlite::Error::InvalidColumnType(
                        6,
                        format!(
                            "final {seq}: a sealed field does not open with this key (altered?)"
                        ),
                        rusqlite::types::Type::Text,
                    )
                }),
                _ => Ok(stored),
            }
        };
        let rows = stmt
            .query_map(params![channel, meeting], |r| {
                let seq: i64 = r.get(1)?;
                let glossary = open(r.get(8)?, seq)?;
                Ok(Final {
                    channel: r.get(0)?,
                    seq: seq as u64,
                    start: r.get(2)?,
                    end: r.get(3)?,
                    wall_ms: r.get::<_, i64>(4)? as u64,
                    language: r.get(5)?,
                    text: open(r.get(6)?, seq)?,
                    raw_text: open(r.get(7)?, seq)?,
                    glossary: serde_json::from_str::<Annotations>(&glossary).unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The last seq archived for a meeting's channel (0: none).
    pub fn last_seq(&self, meeting: &str, channel: &str) -> Result<u64, ArchiveError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(
                    COALESCE((SELECT MAX(seq) FROM finals WHERE meeting = ?1 AND channel = ?2), 0),
                    COALESCE((SELECT last_seq FROM seqs WHERE meeting = ?1 AND channel = ?2), 0))",
                params![meeting, channel],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Where a meeting's channel's archived finals end (media seconds; 0 when none): a
    /// restarted server's times go on from here, so the transcript stays in order.
    pub fn last_end(&self, meeting: &str, channel: &str) -> Result<f64, ArchiveError> {
        let v: Option<f64> = self
            .conn
            .query_row(
                "SELECT MAX(end) FROM finals WHERE meeting = ?1 AND channel = ?2",
                params![meeting, channel],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        Ok(v.filter(|t| t.is_finite()).unwrap_or(0.0).max(0.0))
    }

    /// Deletes every final emitted before `before_ms` (Unix ms); returns how many.
    pub fn purge(&mut self, before_ms: u64) -> Result<usize, ArchiveError> {
        // Numbers are the meeting's for its whole life: the highest seq purged stays noted
        // (`seqs`), so a meeting started again on this archive never numbers a final twice.
        let tx = self.conn.transaction().map_err(|e| ArchiveError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        let n = tx
            .execute(
                "INSERT INTO seqs (meeting, channel, last_seq)
                 SELECT meeting, channel, MAX(seq) FROM finals WHERE wall_ms < ?1
                 GROUP BY meeting, channel
                 ON CONFLICT (meeting, channel) DO UPDATE
                 SET last_seq = MAX(last_seq, excluded.last_seq)",
                params![before_ms as i64],
            )
            .and_then(|_| {
                tx.execute(
                    "DELETE FROM finals WHERE wall_ms < ?1",
                    params![before_ms as i64],
                )
            })
            .and_then(|n| tx.commit().map(|()| n))
            .map_err(|e| ArchiveError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
        // Reclaim the space: purged text should not linger in free pages.
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .map_err(|e| self.err(e))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(channel: &str, seq: u64, wall_ms: u64, text: &str) -> Final {
        Final {
            wall_ms,
            ..Final::test(channel, seq, text)
        }
    }

    #[test]
    fn finals_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let mut a = Archive::open(&path).unwrap();
        a.append("m", &[f("floor", 1, 10, "one"), f("es", 1, 11, "uno")])
            .unwrap();
        a.append("m", &[f("floor", 2, 12, "two")]).unwrap();
        drop(a);
        let a = Archive::open(&path).unwrap();
        let got = a.finals(Some("m"), "floor").unwrap();
        assert_eq!(
            got,
            vec![f("floor", 1, 10, "one"), f("floor", 2, 12, "two")]
        );
        assert_eq!(a.last_seq("m", "floor").unwrap(), 2);
        assert_eq!(a.last_seq("m", "ru").unwrap(), 0);
        assert_eq!(a.last_end("m", "floor").unwrap(), 3.0);
        assert_eq!(a.last_end("m", "ru").unwrap(), 0.0);
    }

    /// With the organizer's key the words are sealed: not in the file, read back with the
    /// key; without it, or with another, the archive is refused, saying so.
    #[test]
    fn a_keyed_archive_keeps_the_words_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let key = "correct horse battery staple";
        let mut a = Archive::open_keyed(&path, Some(key)).unwrap();
        assert!(a.sealed());
        let mut one = f("floor", 1, 10, "Maria was arrested in the raid");
        one.raw_text = "Maria was arrested in the rate".into();
        a.append("m", &[one.clone(), f("floor", 2, 12, "two")])
            .unwrap();
        drop(a);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(dir.path().join("a.sqlite-wal")).unwrap_or_default());
        assert!(
            !bytes.windows(5).any(|w| w == b"Maria"),
            "the words are in the file"
        );
        let a = Archive::open_keyed(&path, Some(key)).unwrap();
        let got = a.finals(Some("m"), "floor").unwrap();
        assert_eq!(got[0], one);
        assert_eq!(got[1].text, "two");
        drop(a);
        let none = Archive::open_keyed(&path, None).err().unwrap().to_string();
        assert!(
            none.contains("encrypted") && none.contains(KEY_VAR),
            "{none}"
        );
        let wrong = Archive::open_keyed(&path, Some("another key"))
            .err()
            .unwrap()
            .to_string();
        assert!(wrong.contains("not this archive's key"), "{wrong}");
    }

    /// An archive that has plain finals is not sealed half-way.
    #[test]
    fn a_plain_archive_is_not_sealed_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        Archive::open_keyed(&path, None)
            .unwrap()
            .append("m", &[f("floor", 1, 10, "one")])
            .unwrap();
        let e = Archive::open_keyed(&path, Some("a key"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("1 unencrypted final"), "{e}");
        // Unchanged and readable as it was.
        let a = Archive::open_keyed(&path, None).unwrap();
        assert_eq!(a.finals(Some("m"), "floor").unwrap().len(), 1);
    }

    #[test]
    fn off_record_finals_leave_only_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let mut a = Archive::open(&path).unwrap();
        a.append("m", &[f("floor", 1, 10, "on the record")])
            .unwrap();
        a.note_seqs(
            "m",
            &[f("floor", 2, 11, "secret"), f("floor", 3, 12, "secret")],
        )
        .unwrap();
        a.note_seqs("m", &[f("floor", 2, 11, "secret")]).unwrap();
        drop(a);
        let a = Archive::open(&path).unwrap();
        assert_eq!(a.finals(Some("m"), "floor").unwrap().len(), 1);
        // A restarted meeting numbers on from 4, not 2.
        assert_eq!(a.last_seq("m", "floor").unwrap(), 3);
        drop(a);
        let bytes = std::fs::read(&path).unwrap();
        let wal = std::fs::read(dir.path().join("a.sqlite-wal")).unwrap_or_default();
        for b in [bytes, wal] {
            assert!(!b.windows(6).any(|w| w == b"secret"), "the text is stored");
        }
    }

    #[test]
    fn purge_deletes_what_is_older() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::open(&dir.path().join("a.sqlite")).unwrap();
        a.append("m", &[f("floor", 1, 10, "old"), f("floor", 2, 1000, "new")])
            .unwrap();
        assert_eq!(a.purge(500).unwrap(), 1);
        let got = a.finals(None, "floor").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "new");
    }

    #[test]
    fn purging_every_final_keeps_the_numbers_going() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::open(&dir.path().join("a.sqlite")).unwrap();
        a.append("m", &[f("floor", 1, 10, "one"), f("floor", 2, 20, "two")])
            .unwrap();
        a.append("m", &[f("es", 7, 30, "siete")]).unwrap();
        assert_eq!(a.purge(u64::MAX / 2).unwrap(), 3);
        assert!(a.finals(None, "floor").unwrap().is_empty());
        // A meeting started again on this archive goes on from 3 and 8, not from 1.
        assert_eq!(a.last_seq("m", "floor").unwrap(), 2);
        assert_eq!(a.last_seq("m", "es").unwrap(), 7);
    }

    #[test]
    fn a_file_that_is_not_an_archive_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.sqlite");
        std::fs::write(&path, "these are my notes, not a database").unwrap();
        let e = Archive::open(&path).err().expect("refused").to_string();
        assert!(e.contains("notes.sqlite"), "{e}");
    }
}
