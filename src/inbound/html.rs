//! HTML-only mails made readable: the quoted history is cut off where a mail client's quote
//! container starts, and the rest turned into text by html2text. Plain quotes (`<blockquote>`)
//! come out as `> ` lines, which the extractor removes like any quote.

/// Markers of the containers mail clients put the quoted mail in, and the separators before
/// them, by client. The HTML is cut at the tag holding the first one found.
const QUOTE_MARKERS: [&str; 16] = [
    // Gmail (web and apps)
    "class=\"gmail_quote",
    "class=gmail_quote",
    // Thunderbird: the attribution line, then <blockquote type="cite">
    "class=\"moz-cite-prefix",
    // Apple Mail, Thunderbird
    "type=\"cite\"",
    // Outlook on the web, new Outlook, Outlook for Mac
    "id=\"appendonsend\"",
    "id=\"divrplyfwdmsg\"",
    "id=\"x_divrplyfwdmsg\"",
    "id=\"mail-editor-reference-message-container\"",
    "class=\"outlookmessageheader\"",
    // Outlook desktop: the rule above the From:/Sent: block
    "border-top:solid #e1e1e1",
    "border-top:solid #b5c4df",
    // Hotmail / Windows Mail
    "id=\"stopspelling\"",
    // Yahoo
    "class=\"yahoo_quoted",
    // Proton, Zoho
    "class=\"protonmail_quote",
    "class=\"zmail_extra",
    "data-marker=\"__quoted_text__\"",
];

/// Where the quoted history starts in an HTML body (a byte offset into `html`), if anywhere.
pub fn quote_start(html: &str) -> Option<usize> {
    let lower = html.to_ascii_lowercase();
    QUOTE_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .map(|at| lower[..at].rfind('<').unwrap_or(at))
}

/// The new part of an HTML body as text.
pub fn to_text(html: &str) -> String {
    let html = match quote_start(html) {
        Some(at) => &html[..at],
        None => html,
    };
    html2text::config::plain_no_decorate()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_default()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_quote_is_cut_and_text_kept() {
        let html = r#"<div dir="ltr">Yes, it is plugged in.<br><br>Anna</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Sun, Nov 22, 2026 at 10:15 AM Help &lt;support@helpdesk.example&gt; wrote:<br></div><blockquote class="gmail_quote">Is it plugged in?</blockquote></div>"#;
        let text = to_text(html);
        assert!(text.contains("Yes, it is plugged in."), "{text}");
        assert!(text.contains("Anna"));
        assert!(!text.contains("wrote:"), "{text}");
        assert!(!text.contains("Is it plugged in?"));
    }

    #[test]
    fn outlook_web_separator_is_cut() {
        let html = r#"<div>Done.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Help</div><div>old</div>"#;
        assert_eq!(to_text(html).trim(), "Done.");
    }

    #[test]
    fn plain_blockquotes_become_quote_lines() {
        let text = to_text("<p>Answer</p><blockquote><p>question</p></blockquote>");
        assert!(text.contains("> question"), "{text}");
    }
}
