//! Store URLs as people may see them: passwords masked, and the query parameters the
//! PostgreSQL driver would ignore named (by key only: a value may be a secret).
//!
//! The split follows the URL parser the driver uses (sqlx reads `postgres://` URLs with the
//! `url` crate): the authority ends at the first `/`, `?` or `#`, the user part at the last `@`
//! in it, the query at `#`. A URL that does not split cleanly that way (a password with an
//! unencoded `/`, `?` or `#`, say) is not shown at all: its pieces could be parts of the
//! password.

/// What a secret is shown as.
const MASK: &str = "****";

/// The query parameters sqlx-postgres 0.9 reads (`PgConnectOptions::parse_from_url`); it logs
/// any other one with its value, and ignores it.
const POSTGRES_PARAMS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// A store URL safe to print: the password of the user part and the value of every query
/// parameter whose name contains "password" (in any case, read as the driver reads it) are
/// `****`, and so is a fragment.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL the store takes; it is refused before it is used.
        return MASK.to_string();
    };
    if !is_postgres(scheme) {
        // sqlite://PATH[?query]: the path is a file name and may hold any character.
        let (path, query) = split_query(rest);
        return format!(
            "{scheme}://{path}{}",
            query.map(redact_query).unwrap_or_default()
        );
    }
    match Parts::split(rest) {
        Some(parts) => format!("{scheme}://{}", parts.redacted()),
        None => format!("{scheme}://{MASK} (not shown: the URL does not parse)"),
    }
}

/// `text` with every PostgreSQL URL in it shown as [`redact_url`] shows it: for messages of
/// other crates that quote what they read (a TOML syntax error shows its line). A URL runs to
/// the end of its line or to a quote, so that a password with a space in it is still inside.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["postgres://", "postgresql://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end = url.find(['"', '\'', '`', '\n', '\r']).unwrap_or(url.len());
        out.push_str(&redact_url(url[..end].trim_end()));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// The query parameters of a PostgreSQL store URL that the driver does not know (a misspelt
/// `sslmode`, or libpq's `sslpassword`, which it does not support): each is ignored.
pub fn ignored_params(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    if !is_postgres(scheme) {
        return Vec::new();
    }
    let (_, query) = split_query(rest);
    query
        .map(|q| q.trim_start_matches('?'))
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| decode(pair.split_once('=').map_or(pair, |(k, _)| k)))
        .filter(|key| !POSTGRES_PARAMS.contains(&key.as_str()) && !key.starts_with("options["))
        .collect()
}

fn is_postgres(scheme: &str) -> bool {
    scheme == "postgres" || scheme == "postgresql"
}

/// `rest` up to the first `?`, and the query from there (with its `?`, without a fragment).
fn split_query(rest: &str) -> (&str, Option<&str>) {
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    }
}

/// A PostgreSQL URL after `scheme://`, split as the driver splits it.
struct Parts<'a> {
    user: Option<&'a str>,
    has_password: bool,
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: bool,
}

impl<'a> Parts<'a> {
    /// `None` when a piece is not what it should be (a port that is not a number, an `@` after
    /// the authority): then the password may have run into the other pieces.
    fn split(rest: &'a str) -> Option<Parts<'a>> {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (before_fragment, fragment) = match after.split_once('#') {
            Some((b, _)) => (b, true),
            None => (after, false),
        };
        let (path, query) = match before_fragment.find('?') {
            Some(i) => (&before_fragment[..i], Some(&before_fragment[i..])),
            None => (before_fragment, None),
        };
        let port_ok = match host.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((h, port)) if !port.contains(']') => {
                !h.is_empty() && port.chars().all(|c| c.is_ascii_digit())
            }
            _ => true,
        };
        let query_ok = query.is_none_or(|q| {
            q[1..]
                .split('&')
                .all(|pair| !pair.split('=').next().unwrap_or("").contains(['@', '/']))
        });
        // Without a user part, an `@` further on means the authority ended early, inside a
        // password (`user:pa?ss@host`).
        let early_end = userinfo.is_none() && authority.contains(':') && after.contains('@');
        if !port_ok || !query_ok || path.contains('@') || early_end {
            return None;
        }
        let (user, has_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, _)) => (Some(user), true),
                None => (Some(u), false),
            },
            None => (None, false),
        };
        Some(Parts {
            user,
            has_password,
            host,
            path,
            query,
            fragment,
        })
    }

    fn redacted(&self) -> String {
        let mut out = String::new();
        if let Some(user) = self.user {
            out.push_str(user);
            if self.has_password {
                out.push(':');
                out.push_str(MASK);
            }
            out.push('@');
        }
        out.push_str(self.host);
        out.push_str(self.path);
        if let Some(q) = self.query {
            out.push_str(&redact_query(q));
        }
        if self.fragment {
            out.push('#');
            out.push_str(MASK);
        }
        out
    }
}

/// `?a=1&password=x` → `?a=1&password=****`: every parameter whose decoded name contains
/// "password", in any case (`password`, `sslpassword`, `PassWord`, `pass%77ord`).
fn redact_query(query: &str) -> String {
    let pairs: Vec<String> = query
        .trim_start_matches('?')
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if decode(key).to_lowercase().contains("password") => {
                format!("{key}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("?{}", pairs.join("&"))
}

/// A query key or value as a form encodes it: `+` is a space, `%XX` a byte.
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_the_user_part_are_masked() {
        assert_eq!(
            redact_url("postgres://deskmail:s3cret@db:5432/deskmail"),
            "postgres://deskmail:****@db:5432/deskmail"
        );
        assert_eq!(
            redact_url("postgres://deskmail:p@ss@db/deskmail"),
            "postgres://deskmail:****@db/deskmail"
        );
        assert_eq!(
            redact_url("postgresql://deskmail@db/deskmail"),
            "postgresql://deskmail@db/deskmail"
        );
        assert_eq!(
            redact_url("postgres://u:pw@[::1]:5432/x"),
            "postgres://u:****@[::1]:5432/x"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
    }

    #[test]
    fn password_parameters_are_masked_whatever_their_case_or_encoding() {
        assert_eq!(
            redact_url("postgres://deskmail:pw@127.0.0.1:1/x?password=pw2"),
            "postgres://deskmail:****@127.0.0.1:1/x?password=****"
        );
        assert_eq!(
            redact_url(
                "postgres://u@h/db?sslmode=require&PassWord=a&sslpassword=b&pass%77ord=c&passfile=/etc/pgpass"
            ),
            "postgres://u@h/db?sslmode=require&PassWord=****&sslpassword=****&pass%77ord=****&passfile=/etc/pgpass"
        );
        // An `@` in a parameter's value is the value's.
        assert_eq!(
            redact_url("postgres://u@h/db?password=p@ss"),
            "postgres://u@h/db?password=****"
        );
        // Everything after `#` is a fragment to the driver: it may be the rest of a password.
        assert_eq!(
            redact_url("postgres://u@h/db?password=a#b"),
            "postgres://u@h/db?password=****#****"
        );
        assert_eq!(
            redact_url("sqlite://data/x.sqlite?mode=rwc&password=x"),
            "sqlite://data/x.sqlite?mode=rwc&password=****"
        );
    }

    #[test]
    fn a_password_that_breaks_the_url_hides_all_of_it() {
        for url in [
            "postgres://u:pa?ss@h/db",
            "postgres://u:pa/ss@h/db",
            "postgres://u:pa#ss@h/db",
            "postgres://u:12/x@h/db",
            "postgres://u:12?x@h/db",
            "postgres://u:p@s/s@h/db",
        ] {
            let shown = redact_url(url);
            assert_eq!(
                shown, "postgres://**** (not shown: the URL does not parse)",
                "{url}"
            );
        }
        assert_eq!(redact_url("no scheme at all"), "****");
    }

    #[test]
    fn urls_in_other_texts_are_masked_to_the_end_of_their_line() {
        let toml_error = "TOML parse error at line 25, column 62\n   |\n25 | url = \"postgres://d:top secret@db/x?password=x2 \n   |     ^\ninvalid basic string";
        let shown = redact_urls_in(toml_error);
        assert!(!shown.contains("top") && !shown.contains("x2"), "{shown}");
        assert!(
            shown.contains("25 | url = \"postgres://d:****@db/x?password=****\n"),
            "{shown}"
        );
        assert_eq!(
            redact_urls_in("a 'postgresql://u:pw@h/db' and \"postgres://h/db\""),
            "a 'postgresql://u:****@h/db' and \"postgres://h/db\""
        );
        assert_eq!(redact_urls_in("nothing here"), "nothing here");
    }

    #[test]
    fn unknown_parameters_are_named_by_key() {
        assert_eq!(
            ignored_params(
                "postgres://u@h/db?sslmode=require&sslpassword=x&sslmod=1&options[a]=b&passfile=f"
            ),
            ["sslpassword", "sslmod", "passfile"]
        );
        assert!(ignored_params("sqlite://x?foo=1").is_empty());
    }

    #[test]
    fn keys_decode_as_the_driver_reads_them() {
        assert_eq!(decode("pass%77ord"), "password");
        assert_eq!(decode("a+b%"), "a b%");
        assert_eq!(decode("%4"), "%4");
    }
}
