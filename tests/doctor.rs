//! `deskmail doctor` against the harness's real Dovecot and Postfix (with TLS: a certificate
//! signed by a test CA that only `ca_file` makes trusted): a healthy set-up, a bad password, an
//! unknown certificate, a missing folder, `--json`; and the directory's warnings, which need no
//! server.

mod support;

use std::process::Output;

use serde_json::Value;
use support::TestEnv;
use support::mailstack::MailStack;

/// What the set-up varies.
struct Setup<'a> {
    password: &'a str,
    ca_file: bool,
    folder: &'a str,
}

const HEALTHY: Setup = Setup {
    password: "secret",
    ca_file: true,
    folder: "INBOX",
};

/// The example config with the support mailbox read over IMAP with implicit TLS from the stack,
/// notifications through its Postfix with STARTTLS and a login, the store migrated.
fn env_for(stack: &MailStack, setup: &Setup) -> TestEnv {
    let env = TestEnv::new();
    let pass = env.path("support.pass");
    std::fs::write(&pass, format!("{}\n", setup.password)).unwrap();
    let ca = if setup.ca_file {
        format!("ca_file = \"{}\"\n", stack.ca_file().display())
    } else {
        String::new()
    };
    let imap = format!(
        "[mailboxes.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\nusername = \"support@helpdesk.example\"\npassword_file = \"{}\"\nfolder = \"{}\"\n{ca}",
        stack.imaps_port,
        pass.display(),
        setup.folder
    );
    let smtp = format!(
        "[outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"support@helpdesk.example\"\npassword_file = \"{}\"\n{ca}",
        stack.smtp_port,
        pass.display()
    );
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, "", &smtp),
    )
    .unwrap();
    env.ok(&["migrate"]);
    env
}

/// One line of doctor's text output, parsed: status, subject, check, detail, hint.
#[derive(Debug, Clone)]
struct Line {
    status: String,
    subject: String,
    check: String,
    detail: String,
    hint: Option<String>,
}

fn lines(stdout: &str) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for l in stdout.lines() {
        if let Some(hint) = l.strip_prefix("      hint: ") {
            out.last_mut().expect("a hint follows a check").hint = Some(hint.to_string());
            continue;
        }
        let Some((status, rest)) = l.split_once("  ") else {
            continue;
        };
        let mut parts = rest.trim_start().splitn(3, ": ");
        let (Some(subject), Some(check), Some(detail)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        out.push(Line {
            status: status.trim().to_string(),
            subject: subject.to_string(),
            check: check.to_string(),
            detail: detail.to_string(),
            hint: None,
        });
    }
    out
}

/// The line of this subject and check.
fn line<'a>(all: &'a [Line], subject: &str, check: &str) -> &'a Line {
    all.iter()
        .find(|l| l.subject == subject && l.check == check)
        .unwrap_or_else(|| panic!("no line {subject}: {check} in {all:#?}"))
}

/// Runs doctor; prints its output (the docs' samples come from it).
fn doctor(env: &TestEnv, args: &[&str]) -> (Output, String) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    eprintln!(
        "$ deskmail {}\n{stdout}{}exit {:?}",
        all.join(" "),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    (out, stdout)
}

const IMAP: &str = "mailbox support";

fn smtp(stack: &MailStack) -> String {
    format!("smtp 127.0.0.1:{}", stack.smtp_port)
}

#[test]
fn a_healthy_set_up_has_no_failure_and_shows_the_certificates_days_left() {
    let Some(stack) = MailStack::start(true) else {
        return;
    };
    let env = env_for(&stack, &HEALTHY);
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let all = lines(&stdout);
    assert!(all.iter().all(|l| l.status != "FAIL"), "{stdout}");
    for check in ["DNS", "TCP", "login", "capabilities", "folders", "messages"] {
        assert_eq!(line(&all, IMAP, check).status, "OK", "{check}: {stdout}");
    }
    // The harness's certificates are valid for 2 days (less the seconds since they were made):
    // a warning, with the days left.
    for (subject, check) in [(IMAP, "TLS"), (&smtp(&stack)[..], "STARTTLS")] {
        let tls = line(&all, subject, check);
        assert_eq!(tls.status, "WARN", "{stdout}");
        assert!(
            tls.detail
                .starts_with("certificate verified (system CAs + ")
                && (tls.detail.ends_with("(in 1 day)") || tls.detail.ends_with("(in 2 days)")),
            "{}",
            tls.detail
        );
        assert!(tls.hint.as_deref().unwrap().contains("renewed"));
    }
    let folders = line(&all, IMAP, "folders");
    assert!(
        folders.detail.contains("deskmail/processed created"),
        "{}",
        folders.detail
    );
    assert!(
        line(&all, IMAP, "messages")
            .detail
            .starts_with("INBOX holds 0 messages")
    );
    let s = smtp(&stack);
    assert_eq!(line(&all, &s, "AUTH").status, "OK");
    assert!(
        line(&all, &s, "AUTH")
            .detail
            .starts_with("logged in as support@helpdesk.example")
    );
    // Postfix takes 50 MiB, deskmail sends at most 10 MiB.
    assert_eq!(line(&all, &s, "SIZE").status, "OK");
    assert_eq!(line(&all, "store", "migrations").status, "OK");
    assert_eq!(line(&all, "store", "disk space").status, "OK");
    // A second run finds the folders it created.
    let (_, again) = doctor(&env, &[]);
    let again = lines(&again);
    assert!(
        line(&again, IMAP, "folders")
            .detail
            .contains("deskmail/processed exists")
    );

    // IMAP with STARTTLS on the plain port: the same certificate, verified after the upgrade.
    let config = std::fs::read_to_string(env.config()).unwrap().replace(
        &format!("port = {}\ntls = \"implicit\"", stack.imaps_port),
        &format!("port = {}\ntls = \"starttls\"", stack.imap_port),
    );
    std::fs::write(env.config(), config).unwrap();
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let all = lines(&stdout);
    assert!(
        line(&all, IMAP, "TLS")
            .detail
            .starts_with("certificate verified (system CAs + "),
        "{stdout}"
    );
    assert_eq!(line(&all, IMAP, "login").status, "OK", "{stdout}");
}

#[test]
fn a_wrong_password_fails_the_logins_with_the_servers_answers() {
    let Some(stack) = MailStack::start(true) else {
        return;
    };
    let env = env_for(
        &stack,
        &Setup {
            password: "wrong",
            ..HEALTHY
        },
    );
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("doctor: 2 check(s) failed"));
    let all = lines(&stdout);
    let login = line(&all, IMAP, "login");
    assert_eq!(login.status, "FAIL");
    assert!(
        login
            .detail
            .contains("[AUTHENTICATIONFAILED] Authentication failed."),
        "{}",
        login.detail
    );
    assert!(login.hint.as_deref().unwrap().contains("password_file"));
    let auth = line(&all, &smtp(&stack), "AUTH");
    assert_eq!(auth.status, "FAIL");
    assert!(auth.detail.contains("535"), "{}", auth.detail);
    assert!(auth.hint.as_deref().unwrap().contains("password_file"));
    // Nothing after the login is checked.
    assert!(
        !all.iter()
            .any(|l| l.subject == IMAP && l.check == "folders")
    );

    // --json: the same checks, statuses and exit code.
    let (json_out, json) = doctor(&env, &["--json"]);
    assert_eq!(json_out.status.code(), Some(1));
    let checks: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(checks.len(), all.len());
    for (c, l) in checks.iter().zip(&all) {
        assert_eq!(c["status"].as_str().unwrap().to_uppercase(), l.status);
        assert_eq!(c["subject"], l.subject.as_str());
        assert_eq!(c["check"], l.check.as_str());
        // The days left and the free space may have changed between the two runs.
        if !["TLS", "STARTTLS", "disk space"].contains(&l.check.as_str()) {
            assert_eq!(c["detail"], l.detail.as_str());
        }
        assert_eq!(c["hint"].as_str(), l.hint.as_deref());
    }
}

#[test]
fn a_certificate_of_an_unknown_ca_fails_tls_with_a_hint_to_set_ca_file() {
    let Some(stack) = MailStack::start(true) else {
        return;
    };
    let env = env_for(
        &stack,
        &Setup {
            ca_file: false,
            ..HEALTHY
        },
    );
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let all = lines(&stdout);
    for (subject, check, table) in [
        (IMAP, "TLS", "[mailboxes.imap]"),
        (&smtp(&stack)[..], "STARTTLS", "[outbound.smtp]"),
    ] {
        let tls = line(&all, subject, check);
        assert_eq!(tls.status, "FAIL", "{stdout}");
        assert!(tls.detail.contains("UnknownIssuer"), "{}", tls.detail);
        let hint = tls.hint.as_deref().unwrap();
        assert!(
            hint.contains(&format!("set ca_file = \"/path/to/ca.pem\" in {table}")),
            "{hint}"
        );
    }
}

#[test]
fn a_watched_folder_that_does_not_exist_fails_the_folders_check() {
    let Some(stack) = MailStack::start(true) else {
        return;
    };
    let env = env_for(
        &stack,
        &Setup {
            folder: "NoSuchFolder",
            ..HEALTHY
        },
    );
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let all = lines(&stdout);
    assert_eq!(line(&all, IMAP, "login").status, "OK");
    let folders = line(&all, IMAP, "folders");
    assert_eq!(folders.status, "FAIL");
    assert!(
        folders
            .detail
            .starts_with("the watched folder NoSuchFolder does not exist (the server has: "),
        "{}",
        folders.detail
    );
    assert!(folders.detail.contains("INBOX"));
    assert!(folders.hint.as_deref().unwrap().contains("set folder"));
    assert!(!all.iter().any(|l| l.check == "messages"));
}

#[test]
fn directory_ambiguities_are_warnings() {
    let env = TestEnv::new();
    let mut config = std::fs::read_to_string(env.config()).unwrap();
    // Bob names no locale; dora@acme.example is Globex's member but Acme owns acme.example.
    config.push_str(
        "\n[[team.agents]]\naddress = \"bob@helpdesk.example\"\nname = \"Bob Agent\"\n\
         \n[[organisations]]\nname = \"Initech\"\ndomains = [\"initech.example\"]\n\
         \n[[organisations.members]]\naddress = \"dora@acme.example\"\nname = \"Dora\"\n",
    );
    std::fs::write(env.config(), config).unwrap();
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let all = lines(&stdout);
    let two = line(&all, "directory", "address in two organisations");
    assert_eq!(two.status, "WARN");
    assert_eq!(
        two.detail,
        "dora@acme.example is in Initech (member) and Acme (domain acme.example): its mail counts as Initech's"
    );
    assert!(two.hint.as_deref().unwrap().contains("one organisation"));
    let locale = line(&all, "directory", "agents without a locale");
    assert_eq!(locale.status, "WARN");
    assert_eq!(
        locale.detail,
        "bob@helpdesk.example name no locale: they get the help desk's (en)"
    );
    assert!(locale.hint.as_deref().unwrap().contains("locale"));
    // The demo's "OS/HCMS Support" is in no organisation's partners.
    let partner = line(&all, "directory", "partner no organisation involves");
    assert_eq!(partner.status, "WARN");
    assert!(partner.detail.contains("\"OS/HCMS Support\""));
}

#[test]
fn oauth2_accounts_log_in_with_a_token_and_a_revoked_sign_in_points_to_auth_login() {
    use support::demo::SUPPORT as USER;
    use support::oauth_provider::Provider;
    let provider = Provider::start();
    let Some(stack) = MailStack::start_oauth2(&provider.url("/introspect")) else {
        return;
    };
    let env = TestEnv::new();
    let token_file = env.path("support.token");
    provider.signed_in(USER, &token_file);
    // The mailbox and the SMTP account share the token file.
    let imap = provider.imap_table(&stack, USER, &token_file);
    let smtp_table = provider.smtp_table(&stack, USER, &token_file);
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, "", &smtp_table),
    )
    .unwrap();
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let all = lines(&stdout);
    assert_eq!(
        line(&all, IMAP, "OAuth2 token").detail,
        format!("an access token for {USER} from custom (flow device)")
    );
    assert_eq!(
        line(&all, IMAP, "login").detail,
        format!("logged in as {USER} with an OAuth2 access token (XOAUTH2)")
    );
    let auth = line(&all, &smtp(&stack), "AUTH");
    assert_eq!(auth.status, "OK");
    assert!(
        auth.detail.starts_with(&format!(
            "logged in as {USER} with an OAuth2 access token (XOAUTH2)"
        )),
        "{}",
        auth.detail
    );

    // The sign-in is revoked: no access token, and the hint says how to sign in again.
    provider.revoke(USER);
    provider.expire_access_tokens();
    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let all = lines(&stdout);
    // No login is tried without a token.
    assert!(!all.iter().any(|l| l.subject == IMAP && l.check == "login"));
    let login = line(&all, IMAP, "OAuth2 token");
    assert_eq!(login.status, "FAIL");
    assert!(login.detail.contains("invalid_grant"), "{}", login.detail);
    assert!(
        login
            .hint
            .as_deref()
            .unwrap()
            .contains("deskmail auth login support"),
        "{login:?}"
    );
    let auth = line(&all, &smtp(&stack), "AUTH");
    assert_eq!(auth.status, "FAIL");
    assert!(
        auth.hint
            .as_deref()
            .unwrap()
            .contains("deskmail auth login smtp")
    );
}

#[tokio::test]
async fn a_maildir_mailbox_and_a_postgres_store_are_checked() {
    let Some(db) = support::pg::PgDb::create().await else {
        return;
    };
    let mut env = TestEnv::new();
    env.set("DESKMAIL__STORE__URL", &db.url);
    // The MTA made new/ and cur/; tmp/ is missing.
    let maildir = env.path("Maildir");
    for sub in ["new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1.eml"), "Subject: x\r\n\r\nx\r\n").unwrap();
    let table = format!("[mailboxes.maildir]\npath = \"{}\"\n", maildir.display());
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&table, "", ""),
    )
    .unwrap();

    let (out, stdout) = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let all = lines(&stdout);
    let md = line(&all, IMAP, "Maildir");
    assert_eq!(md.status, "WARN");
    assert!(
        md.detail
            .ends_with("1 mail(s) in new/, 0 in cur/; tmp/ missing"),
        "{}",
        md.detail
    );
    let reachable = line(&all, "store", "reachable");
    assert_eq!(reachable.status, "OK");
    assert!(
        reachable.detail.ends_with("(PostgreSQL)"),
        "{}",
        reachable.detail
    );
    // A new database: every migration pending, which any command applies.
    assert_eq!(line(&all, "store", "migrations").status, "WARN");
    // Free disk space is SQLite's concern only.
    assert!(!all.iter().any(|l| l.check == "disk space"));

    env.ok(&["migrate"]);
    let (_, stdout) = doctor(&env, &[]);
    let migrations = line(&lines(&stdout), "store", "migrations").clone();
    assert_eq!(migrations.status, "OK");
    assert!(
        migrations.detail.ends_with("applied, none pending"),
        "{}",
        migrations.detail
    );
}
