//! Ticket numbers: a configurable format that can carry the date in the help desk's time zone
//! (`SUP-20261122-0042`). The sequence is per scope (everything but the sequence number, e.g.
//! one per day) and is allocated by the store inside the creating transaction.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `{prefix}-{date}-{seq:04}` → `SUP-20261122-0042`.
pub const DEFAULT_FORMAT: &str = "{prefix}-{date}-{seq:04}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Prefix,
    Date,
    Year,
    Month,
    Day,
    Seq(usize),
}

/// A parsed ticket number format.
#[derive(Debug, Clone)]
pub struct TicketFormat {
    parts: Vec<Part>,
    prefix: String,
    tz: TimeZone,
    pattern: String,
}

impl TicketFormat {
    /// Parses a format. Placeholders: `{prefix}`, `{date}` (YYYYMMDD), `{year}`, `{month}`,
    /// `{day}`, and exactly one `{seq}` or `{seq:N}` (zero-padded to N digits).
    pub fn new(pattern: &str, prefix: &str, time_zone: &str) -> Result<Self, String> {
        let tz = TimeZone::get(time_zone).map_err(|e| format!("time zone {time_zone}: {e}"))?;
        let mut parts = Vec::new();
        let mut rest = pattern;
        let mut seqs = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed {{ in \"{pattern}\""))?
                + open;
            let name = &rest[open + 1..close];
            let part = match name {
                "prefix" => Part::Prefix,
                "date" => Part::Date,
                "year" => Part::Year,
                "month" => Part::Month,
                "day" => Part::Day,
                "seq" => Part::Seq(0),
                _ => match name.strip_prefix("seq:").map(str::parse::<usize>) {
                    Some(Ok(w)) if w <= 12 => Part::Seq(w),
                    _ => {
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known: prefix, date, year, month, day, seq, seq:N)"
                        ));
                    }
                },
            };
            if matches!(part, Part::Seq(_)) {
                seqs += 1;
            }
            parts.push(part);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if seqs != 1 {
            return Err(format!("\"{pattern}\" must contain {{seq}} exactly once"));
        }
        if prefix.contains(char::is_whitespace) || prefix.contains(['[', ']']) {
            return Err(format!(
                "the prefix \"{prefix}\" may not contain spaces or brackets"
            ));
        }
        Ok(TicketFormat {
            parts,
            prefix: prefix.to_string(),
            tz,
            pattern: pattern.to_string(),
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn render_with(&self, now: Timestamp, seq: Option<i64>) -> String {
        let date = now.to_zoned(self.tz.clone()).date();
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Prefix => out.push_str(&self.prefix),
                Part::Date => out.push_str(&format!(
                    "{:04}{:02}{:02}",
                    date.year(),
                    date.month(),
                    date.day()
                )),
                Part::Year => out.push_str(&format!("{:04}", date.year())),
                Part::Month => out.push_str(&format!("{:02}", date.month())),
                Part::Day => out.push_str(&format!("{:02}", date.day())),
                Part::Seq(w) => match seq {
                    Some(n) => out.push_str(&format!("{n:0w$}", w = *w)),
                    None => out.push('#'),
                },
            }
        }
        out
    }

    /// The counter's scope at `now`: the number without its sequence (`SUP-20261122-#`).
    pub fn scope(&self, now: Timestamp) -> String {
        self.render_with(now, None)
    }

    /// The number at `now` with sequence `seq`.
    pub fn render(&self, now: Timestamp, seq: i64) -> String {
        self.render_with(now, Some(seq))
    }

    /// A regular expression (without anchors, to be used case-insensitively) that finds ticket
    /// numbers of this format in text, tolerant of spaces around the separators that mail
    /// clients and people sometimes put in (`SUP - 20261122 - 0042`).
    pub fn regex_source(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => {
                    for c in s.chars() {
                        if c.is_alphanumeric() {
                            out.push_str(&regex_escape(c));
                        } else {
                            out.push_str(&format!(r"\s*{}\s*", regex_escape(c)));
                        }
                    }
                }
                Part::Prefix => {
                    out.push_str(&self.prefix.chars().map(regex_escape).collect::<String>())
                }
                Part::Date => out.push_str(r"\d{8}"),
                Part::Year => out.push_str(r"\d{4}"),
                Part::Month | Part::Day => out.push_str(r"\d{2}"),
                Part::Seq(_) => out.push_str(r"\d{1,12}"),
            }
        }
        out
    }

    /// A number as found in text, in the form deskmail writes it: without spaces, and in upper
    /// case when the prefix is.
    pub fn canonical(&self, found: &str) -> String {
        let compact: String = found.chars().filter(|c| !c.is_whitespace()).collect();
        if self.prefix == self.prefix.to_uppercase() {
            compact.to_uppercase()
        } else {
            compact
        }
    }
}

fn regex_escape(c: char) -> String {
    if c.is_alphanumeric() || c == ' ' {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_the_help_desks_not_utc() {
        let f = TicketFormat::new(DEFAULT_FORMAT, "SUP", "Europe/Berlin").unwrap();
        // 23:30 UTC on 21 Nov is already 22 Nov in Berlin.
        let t: Timestamp = "2026-11-21T23:30:00Z".parse().unwrap();
        assert_eq!(f.render(t, 42), "SUP-20261122-0042");
        assert_eq!(f.scope(t), "SUP-20261122-#");
        let utc = TicketFormat::new(DEFAULT_FORMAT, "SUP", "UTC").unwrap();
        assert_eq!(utc.render(t, 7), "SUP-20261121-0007");
    }

    #[test]
    fn numbers_are_found_in_mangled_text() {
        let f = TicketFormat::new(DEFAULT_FORMAT, "SUP", "UTC").unwrap();
        let re = regex::RegexBuilder::new(&f.regex_source())
            .case_insensitive(true)
            .build()
            .unwrap();
        let m = re.find("AW: [ sup - 20261122 -0042 ] x").unwrap();
        assert_eq!(f.canonical(m.as_str()), "SUP-20261122-0042");
        assert!(re.find("SUP-2026-0042").is_none());
    }

    #[test]
    fn bad_formats_say_why() {
        assert!(
            TicketFormat::new("{prefix}-{date}", "SUP", "UTC")
                .unwrap_err()
                .contains("{seq}")
        );
        assert!(
            TicketFormat::new("{prefix}-{nope}-{seq}", "SUP", "UTC")
                .unwrap_err()
                .contains("nope")
        );
        assert!(TicketFormat::new("{prefix}-{seq", "SUP", "UTC").is_err());
        let plain = TicketFormat::new("T{seq}", "X", "UTC").unwrap();
        assert_eq!(plain.render(Timestamp::UNIX_EPOCH, 12345), "T12345");
    }
}
