//! The hostile corpus: mails made to cost deskmail as much time and memory as their shape can,
//! generated here (the repository keeps the recipe, not the megabytes). `tests/hostile.rs`
//! asserts what deskmail does with each; `benches/hostile.rs` measures time and peak memory of
//! `deskmail ingest` on each, next to mail-parser's bare parse.
//!
//! Every case is from anna@acme.example (a customer of the demo help desk) with a Return-Path,
//! as an MTA delivers it, and answers her ticket [`TICKET`] by its subject: what happens is what
//! would happen to her reply (extraction, commands, a comment, the team's notification).

/// The ticket the cases answer: the first one of 2026-11-22 (the test's clock; the bench gives
/// its store a ticket number format that makes its first ticket this one).
pub const TICKET: &str = "SUP-20261122-0001";

/// What deskmail must make of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Taken in as a person's mail: a comment on the ticket, or a new one.
    Applied,
    /// Refused as empty: what the bounds let deskmail read of it holds no text.
    Empty,
    /// Refused for its size, headers only kept (`ingest` exits 65).
    TooLarge,
    /// Kept as failed, not a mail (`ingest` exits 65).
    NotAMail,
}

/// One hostile mail, made when asked for (they are up to 30 MB each).
pub struct Case {
    pub name: &'static str,
    pub what: &'static str,
    pub make: fn() -> Vec<u8>,
    pub expect: Expect,
    /// A warning the reading must give, if any (a bound that applied).
    pub warning: Option<&'static str>,
}

/// A deterministic byte stream (xorshift), for random-looking content.
struct Noise(u64);

/// Random-looking bytes, the same every time.
pub fn noise(n: usize) -> Vec<u8> {
    Noise(0x9e37_79b9_7f4a_7c15).bytes(n)
}

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

const MIB: usize = 1024 * 1024;

fn headers(name: &str, content_type: &str) -> String {
    format!(
        "Return-Path: <anna@acme.example>\r\n\
         From: Anna Example <anna@acme.example>\r\n\
         To: support@helpdesk.example\r\n\
         Subject: Re: [{TICKET}] Hostile case {name}\r\n\
         Message-ID: <hostile-{name}@acme.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\n"
    )
}

fn mail(name: &str, content_type: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = headers(name, content_type).into_bytes();
    out.extend_from_slice(extra_headers.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn html(name: &str, body: String) -> Vec<u8> {
    mail(name, "text/html; charset=utf-8", "", body.as_bytes())
}

/// Base64 in lines of 76 characters, as mail carries it.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A multipart/mixed mail (boundary `b`) of one text part.
fn multipart_text(name: &str, text: &str) -> Vec<u8> {
    let body = format!("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b--\r\n");
    mail(name, "multipart/mixed; boundary=b", "", body.as_bytes())
}

/// A multipart/mixed mail: a short text, then these files.
fn with_files(name: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let b = "hostile-boundary";
    let mut body =
        format!("--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe files.\r\n")
            .into_bytes();
    for (filename, data) in files {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"{filename}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&base64_lines(data));
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    mail(
        name,
        &format!("multipart/mixed; boundary=\"{b}\""),
        "",
        &body,
    )
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let applied = |name, what, make, warning| Case {
        name,
        what,
        make,
        expect: Expect::Applied,
        warning,
    };
    let empty = |name, what, make, warning| Case {
        name,
        what,
        make,
        expect: Expect::Empty,
        warning,
    };
    let beyond = Some("text goes on beyond");
    vec![
        applied(
            "html-nested-div",
            "HTML only: 100,000 nested <div>",
            || {
                let open = "<div>".repeat(100_000);
                html(
                    "html-nested-div",
                    format!("{open}x{}", "</div>".repeat(100_000)),
                )
            },
            None,
        ),
        applied(
            "html-nested-blockquote",
            "HTML only: 100,000 nested <blockquote>",
            || {
                let open = "<blockquote>".repeat(100_000);
                let close = "</blockquote>".repeat(100_000);
                html("html-nested-blockquote", format!("{open}x{close}"))
            },
            None,
        ),
        applied(
            "html-unclosed",
            "HTML only: 30,000 unclosed formatting and table tags",
            || {
                let tags = "<b><i><table><tr><td><font>".repeat(30_000);
                html("html-unclosed", format!("{tags}x"))
            },
            None,
        ),
        applied(
            "html-many-attributes",
            "HTML only: one tag of 2,000,000 attributes, each named anew",
            || {
                let attributes: String = (0..2_000_000).map(|i| format!(" a{i}=v")).collect();
                html("html-many-attributes", format!("<p{attributes}>x</p>"))
            },
            None,
        ),
        applied(
            "html-paragraphs-4mib",
            "HTML only: <p>x</p> repeated to 4 MiB",
            || html("html-paragraphs-4mib", "<p>x</p>".repeat(4 * MIB / 8)),
            beyond,
        ),
        applied(
            "html-flat-20mib",
            "HTML only: 20 MiB of paragraphs",
            || {
                let p = "<p>Hello, this is a paragraph of text that goes on and on.</p>\n";
                html("html-flat-20mib", p.repeat(20 * MIB / p.len()))
            },
            beyond,
        ),
        applied(
            "boundary-words",
            "a line of 2,000,000 words \"boundary\" in a multipart",
            || {
                let line = "boundary ".repeat(2_000_000);
                multipart_text("boundary-words", &line)
            },
            None,
        ),
        applied(
            "delimiters-mid-line",
            "a multipart of 100 KB whose text names its boundary twice on one line",
            || {
                let text = format!("See --b and --b here.\r\n{}", "x".repeat(100_000));
                multipart_text("delimiters-mid-line", &text)
            },
            None,
        ),
        Case {
            name: "random-30mb",
            what: "30 MB of random bytes",
            make: || noise(30_000_000),
            expect: Expect::TooLarge,
            warning: None,
        },
        Case {
            name: "over-the-limit",
            what: "a well-formed mail of 26 MiB (a 19.5 MiB file)",
            make: || {
                with_files(
                    "over-the-limit",
                    &[("big.bin".into(), noise(19 * MIB + MIB / 2))],
                )
            },
            expect: Expect::TooLarge,
            warning: None,
        },
        Case {
            name: "not-a-mail",
            what: "1 MiB of binary without a header",
            make: || {
                let mut raw = b"\x00\x01".to_vec();
                raw.extend(noise(MIB).iter().map(|b| if *b == b':' { 0 } else { *b }));
                raw
            },
            expect: Expect::NotAMail,
            warning: None,
        },
        empty(
            "deep-mime",
            "10,000 nested multiparts, never closed",
            || deep_mime(10_000),
            Some("multipart containers"),
        ),
        applied(
            "many-parts",
            "5,000 attachments of 3 KB",
            || {
                let files: Vec<(String, Vec<u8>)> = (0..5000)
                    .map(|i| (format!("file-{i}.bin"), Noise(i + 1).bytes(3000)))
                    .collect();
                with_files("many-parts", &files)
            },
            Some("MIME parts"),
        ),
        applied(
            "big-attachments",
            "a 23 MiB mail: two files of 8.5 MiB",
            || {
                let one = noise(8 * MIB + MIB / 2);
                let two = Noise(7).bytes(8 * MIB + MIB / 2);
                with_files(
                    "big-attachments",
                    &[("one.bin".into(), one), ("two.bin".into(), two)],
                )
            },
            None,
        ),
        applied(
            "attachments-mailed",
            "two files of 3.4 MiB, which go along with the team's notification",
            || {
                let one = noise(3 * MIB + 2 * MIB / 5);
                let two = Noise(11).bytes(3 * MIB + 2 * MIB / 5);
                with_files(
                    "attachments-mailed",
                    &[("a.bin".into(), one), ("b.bin".into(), two)],
                )
            },
            None,
        ),
        applied(
            "zero-base64",
            "an 18 MiB file of zeros in base64 (packs to almost nothing)",
            || with_files("zero-base64", &[("zeros.bin".into(), vec![0; 18 * MIB])]),
            None,
        ),
        applied(
            "nested-base64-mail",
            "a mail in a mail in a mail, each base64-encoded, 16 MiB in all",
            nested_base64_mail,
            Some("base64 or quoted-printable"),
        ),
        applied(
            "mid-line-delimiters",
            "50,000 parts whose delimiters stand in the middle of a line",
            || {
                let parts = "x--b\r\nContent-Type: text/plain\r\n\r\npart\r\n".repeat(50_000);
                let body = format!("--b\r\nContent-Type: text/plain\r\n\r\nHello.\r\n{parts}");
                mail(
                    "mid-line-delimiters",
                    "multipart/mixed; boundary=b",
                    "",
                    body.as_bytes(),
                )
            },
            Some("MIME parts"),
        ),
        empty(
            "long-boundary",
            "50,000 parts with a boundary of 250 characters",
            || {
                let b = "b".repeat(250);
                let parts = format!("--{b}\r\nContent-Type: text/plain\r\n\r\npart\r\n");
                let body = format!("Hello.\r\n{}", parts.repeat(50_000));
                let ct = format!("multipart/mixed; boundary=\"{b}\"");
                mail("long-boundary", &ct, "", body.as_bytes())
            },
            Some("does not read"),
        ),
        empty(
            "nested-digests",
            "40,000 nested multipart/digest (a stack overflow in the MIME parser)",
            || {
                let mut body = String::from("--d0\r\n");
                for i in 1..40_000 {
                    body.push_str(&format!(
                        "Content-Type: multipart/digest; boundary=d{i}\r\n\r\n--d{i}\r\n"
                    ));
                }
                mail(
                    "nested-digests",
                    "multipart/digest; boundary=d0",
                    "",
                    body.as_bytes(),
                )
            },
            Some("embedded in the mail"),
        ),
        empty(
            "many-headers",
            "200,000 header lines",
            || {
                let spam = "X-Spam-Report: looks fine\r\n".repeat(200_000);
                mail("many-headers", "text/plain", &spam, b"Hello.\r\n")
            },
            Some("header lines"),
        ),
        applied(
            "huge-subject",
            "a subject of 10 MiB of encoded words",
            || {
                let subject = "=?utf-8?q?Gr=C3=BC=C3=9Fe?= ".repeat(10 * MIB / 28);
                with_header("huge-subject", "Subject", &subject)
            },
            None,
        ),
        applied(
            "many-references",
            "100,000 Message-IDs in References, on one line",
            || {
                let ids: Vec<String> = (0..100_000).map(|i| format!("<m{i}@x.example>")).collect();
                with_header("many-references", "References", &ids.join(" "))
            },
            None,
        ),
        applied(
            "many-recipients",
            "100,000 addresses in Cc, on one line",
            || {
                let cc: Vec<String> = (0..100_000).map(|i| format!("p{i}@acme.example")).collect();
                with_header("many-recipients", "Cc", &cc.join(", "))
            },
            None,
        ),
        applied(
            "many-subject-tags",
            "a subject of 20,000 ticket tags",
            || {
                with_header(
                    "many-subject-tags",
                    "Subject",
                    &"[SUP-20261122-0001] ".repeat(20_000),
                )
            },
            None,
        ),
        applied(
            "bad-encodings",
            "broken base64 and quoted-printable, an unknown charset, invalid UTF-8",
            bad_encodings,
            None,
        ),
        applied(
            "eight-bit-headers",
            "a raw Latin-1 subject, a From whose name is broken UTF-8",
            || {
                b"Return-Path: <anna@acme.example>\r\nFrom: \xff\xfe Ann\xc3\x28a <anna@acme.example>\r\n\
To: support@helpdesk.example\r\nSubject: Re: [SUP-20261122-0001] Gr\xfc\xdfe aus M\xfcnchen\r\n\
Message-ID: <hostile-eight-bit-headers@acme.example>\r\n\r\nHallo.\r\n"
                    .to_vec()
            },
            Some("Windows-1252"),
        ),
        applied(
            "long-line",
            "one line of 20 MiB",
            || mail("long-line", "text/plain", "", &vec![b'a'; 20 * MIB]),
            beyond,
        ),
        empty(
            "many-lines",
            "20 MiB of empty lines",
            || mail("many-lines", "text/plain", "", &b"\r\n".repeat(10 * MIB)),
            beyond,
        ),
        applied(
            "attribution-lines",
            "2 MiB of quoted lines that each hold an attribution",
            || {
                let line = "> x On Mon, 1 Jan 2026, A <a@b.example> wrote:\r\n";
                let body = format!("Answer.\r\n{}", line.repeat(2 * MIB / line.len()));
                mail("attribution-lines", "text/plain", "", body.as_bytes())
            },
            None,
        ),
        applied(
            "command-lines",
            "200,000 lines of an unknown / command",
            || {
                let body = "/frobnicate now\r\n".repeat(200_000);
                mail("command-lines", "text/plain", "", body.as_bytes())
            },
            None,
        ),
        applied(
            "nul-bytes",
            "NUL bytes in a header and in the text",
            || {
                let body = b"Hel\0lo.\r\n\0\0\0\r\nBye.\r\n";
                mail("nul-bytes", "text/plain", "X-Nul: a\0b\r\n", body)
            },
            None,
        ),
    ]
}

/// A plain mail with one header of its own (replacing the usual one of that name).
fn with_header(name: &str, header: &str, value: &str) -> Vec<u8> {
    let mut raw: String = headers(name, "text/plain")
        .lines()
        .filter(|l| !l.starts_with(&format!("{header}:")))
        .map(|l| format!("{l}\r\n"))
        .collect();
    raw.push_str(&format!("{header}: {value}\r\n\r\nHello.\r\n"));
    raw.into_bytes()
}

/// `depth` multiparts, each the only part of the one around it, and never closed.
fn deep_mime(depth: usize) -> Vec<u8> {
    let mut body = String::new();
    for level in 1..depth {
        body.push_str(&format!(
            "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n",
            level - 1
        ));
    }
    body.push_str(&format!(
        "--b{}\r\nContent-Type: text/plain\r\n\r\nDeep down.\r\n",
        depth - 1
    ));
    mail(
        "deep-mime",
        "multipart/mixed; boundary=\"b0\"",
        "",
        body.as_bytes(),
    )
}

/// A message/rfc822 part, base64, holding one that holds one with a 9 MiB file.
fn nested_base64_mail() -> Vec<u8> {
    let mut inner = with_files("nested-inner", &[("inner.bin".into(), noise(9 * MIB))]);
    for level in 0..2 {
        let b = format!("nest{level}");
        let mut body = format!(
            "--{b}\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n--{b}\r\n\
             Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&base64_lines(&inner));
        body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
        inner = mail(
            "nested-base64-mail",
            &format!("multipart/mixed; boundary=\"{b}\""),
            "",
            &body,
        );
    }
    inner
}

fn bad_encodings() -> Vec<u8> {
    let b = "bad";
    let body = format!(
        "--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         SGVsbG8g!!!d29y*bGQ=====\r\n\
         --{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         Broken =ZZ soft=\r\nbreak =C3=\r\n\
         --{b}\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nUnknown charset.\r\n\
         --{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let mut raw = body.into_bytes();
    raw.extend_from_slice(b"Invalid \xc3\x28 UTF-8 \xff\xfe.\r\n");
    raw.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    mail(
        "bad-encodings",
        &format!("multipart/mixed; boundary=\"{b}\""),
        "",
        &raw,
    )
}
