//! A server certificate's expiry, and why a TLS handshake failed.
//!
//! The expiry (`notAfter`) is read by a small walk along the certificate's DER to the one field:
//! Certificate → tbsCertificate → (version, serialNumber, signature, issuer) → validity →
//! notAfter. A full X.509 parser (x509-parser, x509-cert with der and spki) would be several
//! crates for this one date; the walk is bounds-checked and gives `None` for anything else.

use std::path::Path;

use jiff::Timestamp;
use tokio_rustls::rustls;

use super::Check;

/// Under this many days left, a certificate is a warning.
pub const WARN_DAYS: i64 = 14;

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT`: the version, when it is there.
const VERSION: u8 = 0xa0;

/// The certificate's `notAfter`.
pub fn not_after(der: &[u8]) -> Option<Timestamp> {
    let (tag, certificate, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        tbs = element(tbs)?.2;
    }
    let (tag, validity, _) = element(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, rest) = element(validity)?;
    let (tag, time, _) = element(rest)?;
    let text = std::str::from_utf8(time).ok()?;
    match tag {
        UTC_TIME => time_of(text, 2),
        GENERALIZED_TIME => time_of(text, 4),
        _ => None,
    }
}

/// `YYMMDDHHMMSSZ` (UTCTime: 50–99 are 19xx) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn time_of(text: &str, year_digits: usize) -> Option<Timestamp> {
    let digits = text.strip_suffix('Z')?;
    if digits.len() != year_digits + 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |from: usize, len: usize| digits[from..from + len].parse::<i16>().ok();
    let mut year = num(0, year_digits)?;
    if year_digits == 2 {
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let at = year_digits;
    let datetime = jiff::civil::DateTime::new(
        year,
        i8::try_from(num(at, 2)?).ok()?,
        i8::try_from(num(at + 2, 2)?).ok()?,
        i8::try_from(num(at + 4, 2)?).ok()?,
        i8::try_from(num(at + 6, 2)?).ok()?,
        i8::try_from(num(at + 8, 2)?).ok()?,
        0,
    )
    .ok()?;
    datetime
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Whole days from `now` until `until` (negative once it has passed).
pub fn days_left(until: Timestamp, now: Timestamp) -> i64 {
    let secs = until.as_second() - now.as_second();
    secs.div_euclid(86_400)
}

/// The TLS check of a handshake that succeeded: verified against `trusted`, and how long the
/// certificate has left.
pub fn verified(
    subject: &str,
    check: &str,
    certificate: Option<&[u8]>,
    trusted: &str,
    now: Timestamp,
) -> Check {
    let Some(until) = certificate.and_then(not_after) else {
        return Check::warn(
            subject,
            check,
            format!("certificate verified ({trusted}); its expiry could not be read"),
            "check the certificate's expiry with `openssl s_client -connect HOST:PORT`",
        );
    };
    let days = days_left(until, now);
    let when = until.strftime("%Y-%m-%d %H:%M UTC");
    let detail = format!(
        "certificate verified ({trusted}), expires {when} (in {days} day{})",
        if days == 1 { "" } else { "s" }
    );
    if days < WARN_DAYS {
        Check::warn(
            subject,
            check,
            detail,
            format!(
                "the server's certificate expires in under {WARN_DAYS} days: have it renewed (deskmail refuses it once expired)"
            ),
        )
    } else {
        Check::ok(subject, check, detail)
    }
}

/// What deskmail trusts, for the detail: the system's CAs, and the configured file.
pub fn trusted(ca_file: Option<&Path>) -> String {
    match ca_file {
        Some(ca) => format!("system CAs + {}", ca.display()),
        None => "system CAs".into(),
    }
}

/// The rustls error somewhere in an error's chain (an I/O error carries it inside).
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        next = e.source();
    }
    None
}

/// The TLS check of a handshake that failed for this rustls error; `key` is the config table
/// whose `ca_file` would make the certificate trusted.
pub fn refused(subject: &str, check: &str, e: &rustls::Error, key: &str, has_ca: bool) -> Check {
    use rustls::CertificateError as C;
    let hint = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) if has_ca => format!(
            "the certificate is not signed by the CA in {key}.ca_file nor by one of the system's: set ca_file to the CA (PEM) that signed the server's certificate"
        ),
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the certificate is not signed by a CA this host trusts (self-signed, or a private CA): set ca_file = \"/path/to/ca.pem\" in [{key}] to the CA that signed it, or install that CA among the system's"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired: have it renewed".to_string()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!(
                "the certificate does not name the host deskmail connects to: set {key}.host to a name the certificate lists"
            )
        }
        _ => "check that port and tls match (tls = \"implicit\" for 993 and 465, \"starttls\" for 143 and 587) and the server's TLS set-up (`openssl s_client -connect HOST:PORT` shows what it offers)".to_string(),
    };
    Check::fail(subject, check, format!("handshake refused: {e}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of one element.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// A certificate's shape with this validity (the issuer long enough for a long-form
    /// length), optionally without a version.
    fn certificate(not_after: (u8, &str), version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(der(VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[0x01, 0x23]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(der(SEQUENCE, &[b'x'; 300]));
        let mut validity = der(UTC_TIME, b"260101000000Z");
        validity.extend(der(not_after.0, not_after.1.as_bytes()));
        tbs.extend(der(SEQUENCE, &validity));
        tbs.extend(der(SEQUENCE, b"subject"));
        let mut cert = der(SEQUENCE, &tbs);
        cert.extend(der(SEQUENCE, b"algorithm"));
        der(SEQUENCE, &cert)
    }

    #[test]
    fn not_after_is_read_from_utc_and_generalized_time() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            not_after(&certificate((UTC_TIME, "261208093000Z"), true)),
            Some(t("2026-12-08T09:30:00Z"))
        );
        assert_eq!(
            not_after(&certificate((UTC_TIME, "991231235959Z"), false)),
            Some(t("1999-12-31T23:59:59Z"))
        );
        assert_eq!(
            not_after(&certificate((GENERALIZED_TIME, "20510630120000Z"), true)),
            Some(t("2051-06-30T12:00:00Z"))
        );
    }

    #[test]
    fn a_broken_certificate_gives_no_date_and_no_panic() {
        let good = certificate((UTC_TIME, "261208093000Z"), true);
        for cut in 0..good.len() {
            assert_eq!(not_after(&good[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            not_after(&certificate((UTC_TIME, "26120809300Z"), true)),
            None
        );
        assert_eq!(not_after(&certificate((0x04, "261208093000Z"), true)), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn days_are_whole_days_left_and_negative_once_expired() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(days_left(at("2026-12-08T11:59:59Z"), now), 1);
        assert_eq!(days_left(at("2026-12-08T12:00:00Z"), now), 2);
        assert_eq!(days_left(at("2026-12-06T11:00:00Z"), now), -1);
        let soon = verified(
            "s",
            "TLS",
            Some(&certificate((UTC_TIME, "261210120000Z"), true)),
            "system CAs",
            now,
        );
        assert_eq!(soon.status, super::super::Status::Warn);
        assert!(
            soon.detail
                .contains("expires 2026-12-10 12:00 UTC (in 4 days)")
        );
        let later = verified(
            "s",
            "TLS",
            Some(&certificate((UTC_TIME, "270610120000Z"), true)),
            "system CAs",
            now,
        );
        assert_eq!(later.status, super::super::Status::Ok);
    }
}
