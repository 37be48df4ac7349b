//! The meeting archive: every final of every channel in one SQLite file.
//!
//! WAL journal with `synchronous = FULL`: a transaction that returned is on disk, so a final
//! the server has sent (the writer publishes only after its commit) survives `kill -9` and a
//! power cut. One connection, owned by one writer thread ([`super::pipeline`]); readers
//! (exports) open their own. Migrations are append-only: each runs once, in order, and
//! `PRAGMA user_version` says how many have.

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
];

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
}

pub struct Archive {
    conn: Connection,
    path: PathBuf,
}

impl Archive {
    /// Opens (creating if needed) the archive at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
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
        self.each_final(
            "INSERT OR REPLACE INTO finals
             (meeting, channel, seq, start, end, wall_ms, language, text, raw_text, glossary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            finals,
            |stmt, f| {
                let glossary = serde_json::to_string(&f.glossary).unwrap_or_else(|_| "{}".into());
                stmt.execute(params![
                    meeting,
                    f.channel,
                    f.seq as i64,
                    f.start,
                    f.end,
                    f.wall_ms as i64,
                    f.language,
                    f.text,
                    f.raw_text,
                    glossary
                ])
            },
        )
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
        let rows = stmt
            .query_map(params![channel, meeting], |r| {
                let glossary: String = r.get(8)?;
                Ok(Final {
                    channel: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    start: r.get(2)?,
                    end: r.get(3)?,
                    wall_ms: r.get::<_, i64>(4)? as u64,
                    language: r.get(5)?,
                    text: r.get(6)?,
                    raw_text: r.get(7)?,
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
    pub fn purge(&self, before_ms: u64) -> Result<usize, ArchiveError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM finals WHERE wall_ms < ?1",
                params![before_ms as i64],
            )
            .map_err(|e| self.err(e))?;
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
            channel: channel.into(),
            seq,
            start: seq as f64,
            end: seq as f64 + 1.0,
            wall_ms,
            language: "en".into(),
            text: text.into(),
            raw_text: text.into(),
            glossary: Annotations::default(),
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
    fn a_file_that_is_not_an_archive_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.sqlite");
        std::fs::write(&path, "these are my notes, not a database").unwrap();
        let e = Archive::open(&path).err().expect("refused").to_string();
        assert!(e.contains("notes.sqlite"), "{e}");
    }
}
