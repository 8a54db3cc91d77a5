//! OAuth2 (XOAUTH2) on the real Dovecot and Postfix: Dovecot checks every bearer token at the
//! test provider's introspection endpoint (tests/support/oauth_provider.rs, the one stand-in,
//! for Microsoft's or Google's token side), for IMAP and for Postfix's SMTP AUTH. The sign-in
//! flows of `deskmail auth login`, the rotation and storing of refresh tokens, an access token
//! that stops working, a revoked sign-in, and app-only access.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use support::TestEnv;
use support::daemon::Daemon;
use support::mailstack::MailStack;
use support::oauth_provider::{CLIENT_SECRET, Provider, stored_token, write_token};

use support::demo::SUPPORT;

const BILLING: &str = "billing@helpdesk.example";

fn request(from: &str, to: &str, subject: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Sun, 06 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nPlease help.\r\n"
    )
}

/// A request from `from` to the mailbox `to`, sent through Postfix; waits until the daemon has
/// moved `processed` mails to the mailbox's processed folder.
fn mail_in(stack: &MailStack, daemon: &Daemon, from: &str, to: &str, id: &str, processed: usize) {
    stack.send(from, to, &request(from, to, "Please help", id));
    daemon.wait_until(
        &format!("{id} processed in {to}"),
        Duration::from_secs(60),
        || stack.folder(to, "deskmail/processed").len() == processed,
    );
}

/// `deskmail auth login support` with its stdin and stdout piped; `answer` gets each line it
/// prints and may write to its stdin. Returns when it exits, requiring success.
fn auth_login(env: &TestEnv, mut answer: impl FnMut(&str, &mut dyn Write)) -> String {
    let mut child = env
        .command()
        .args(["auth", "login", "support"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        answer(&line, &mut stdin);
        printed.push_str(&line);
        printed.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "auth login failed:\n{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

/// A config whose support mailbox signs in with the provider (it is not connected to here).
fn login_env(provider: &Provider, flow: &str) -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    let token_file = env.path("support.token");
    let imap = format!(
        "[mailboxes.imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nusername = \"{SUPPORT}\"\nauth = \"oauth2\"\n{}",
        provider.config("mailboxes.imap.oauth2", flow, &token_file)
    );
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, "", ""),
    )
    .unwrap();
    (env, token_file)
}

#[test]
fn the_device_flow_stores_a_token() {
    let provider = Provider::start();
    let (env, token_file) = login_env(&provider, "device");
    let printed = auth_login(&env, |line, _| {
        if let Some(code) = line.split("enter the code ").nth(1) {
            provider.approve_device(code.trim(), SUPPORT);
        }
    });
    assert!(
        printed.contains("Signed in as support@helpdesk.example"),
        "{printed}"
    );
    // The token was tried at once (a refresh, which rotated it): the file holds the new one.
    let token = stored_token(&token_file);
    assert!(provider.refresh_token_works(&token), "{token}");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Polled while the sign-in was pending, then the device code redeemed, then the check.
    let grants = provider.requests();
    let (last, before) = grants.split_last().unwrap();
    assert_eq!(last, "refresh_token ok", "{grants:?}");
    let (redeemed, polls) = before.split_last().unwrap();
    assert_eq!(redeemed, "urn:ietf:params:oauth:grant-type:device_code ok");
    assert!(
        polls
            .iter()
            .all(|p| p == "urn:ietf:params:oauth:grant-type:device_code refused"),
        "{grants:?}"
    );
    let status = env.ok(&["auth", "status"]);
    assert!(
        status.contains("support (support@helpdesk.example, custom)"),
        "{status}"
    );
    assert!(status.contains("OK, an access token until"), "{status}");
    // auth status got a token too: the token it spent is replaced by the one it got.
    assert_ne!(stored_token(&token_file), token);
    assert!(provider.refresh_token_works(&stored_token(&token_file)));
    assert!(!provider.refresh_token_works(&token));
}

#[test]
fn the_authorization_code_flow_stores_a_token() {
    let provider = Provider::start();
    let (env, token_file) = login_env(&provider, "authorization_code");
    let authorize = provider.url("/authorize?");
    let printed = auth_login(&env, |line, stdin| {
        if line.starts_with(&authorize) {
            let back = provider.sign_in_at(line, SUPPORT);
            writeln!(stdin, "{back}").unwrap();
        }
    });
    assert!(printed.contains("Paste the address"), "{printed}");
    assert!(provider.refresh_token_works(&stored_token(&token_file)));
    let grants = provider.requests();
    assert!(
        grants.contains(&"authorization_code ok".to_string()),
        "{grants:?}"
    );
}

#[test]
fn a_pasted_address_of_another_sign_in_is_refused() {
    let provider = Provider::start();
    let (env, token_file) = login_env(&provider, "authorization_code");
    let mut child = env
        .command()
        .args(["auth", "login", "support"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "http://localhost/?code=x&state=not-this-one"
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("its state differs"), "{stderr}");
    assert!(!token_file.exists());
}

#[test]
fn tokens_rotate_are_stored_and_an_expired_access_token_is_refreshed_without_a_lost_mail() {
    let provider = Provider::start();
    let Some(stack) = MailStack::start_oauth2(&provider.url("/introspect")) else {
        return;
    };
    let env = TestEnv::new();
    let token_file = env.path("support.token");
    let first = provider.signed_in(SUPPORT, &token_file);
    // The mailbox and the SMTP account are one account: one token file, one token.
    let imap = provider.imap_table(&stack, SUPPORT, &token_file);
    let smtp = provider.smtp_table(&stack, SUPPORT, &token_file);
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, "", &smtp),
    )
    .unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_until("support connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });
    // The provider rotated the refresh token: the new one is stored, the first one is spent.
    let second = stored_token(&token_file);
    assert_ne!(second, first);
    assert!(provider.refresh_token_works(&second));
    assert!(!provider.refresh_token_works(&first));

    // A request comes in over IMAP; its acknowledgement goes out over SMTP with XOAUTH2.
    mail_in(
        &stack,
        &daemon,
        "anna@acme.example",
        SUPPORT,
        "o-1@acme.example",
        1,
    );
    assert_eq!(stack.wait_for("anna@acme.example", 1).len(), 1);
    let refreshes = |result: &str| {
        provider
            .requests()
            .iter()
            .filter(|r| **r == format!("refresh_token {result}"))
            .count()
    };
    assert_eq!(refreshes("ok"), 1, "IMAP and SMTP share one token");

    // Every access token stops working, and the connection is cut. The mailbox logs in with
    // the token it holds, is refused, gets a new one and goes on: the mail that came
    // meanwhile is taken in, and the rotated refresh token is stored again.
    provider.expire_access_tokens();
    stack.restart_dovecot();
    mail_in(
        &stack,
        &daemon,
        "ben@acme.example",
        SUPPORT,
        "o-2@acme.example",
        2,
    );
    assert_eq!(stack.wait_for("ben@acme.example", 1).len(), 1);
    let third = stored_token(&token_file);
    assert_ne!(third, second);
    assert!(provider.refresh_token_works(&third));
    assert!(!provider.refresh_token_works(&second));
    assert_eq!(refreshes("ok"), 2);
    assert_eq!(refreshes("refused"), 0);
    assert_eq!(env.tickets(&[]).as_array().unwrap().len(), 2);
    // Both servers saw XOAUTH2 logins (the PLAIN ones in Dovecot's log are the test's own
    // looks at the folders): IMAP's before and after the restart.
    let dovecot = std::fs::read_to_string(stack.dir.join("log/dovecot.log")).unwrap();
    assert!(dovecot.matches("method=XOAUTH2").count() >= 2, "{dovecot}");
    let postfix = stack.postfix_log();
    assert!(
        postfix.contains("sasl_method=XOAUTH2, sasl_username=support@helpdesk.example"),
        "{postfix}"
    );

    let account = format!("{{account=\"{SUPPORT}\"");
    assert_eq!(
        daemon.metric(&format!(
            "deskmail_oauth2_refreshes_total{account},result=\"ok\"}}"
        )),
        2.0
    );
    assert_eq!(
        daemon.metric(&format!("deskmail_oauth2_last_refresh_ok{account}}}")),
        1.0
    );
    let now = jiff::Timestamp::now().as_second() as f64;
    let expiry = daemon.metric(&format!(
        "deskmail_oauth2_access_token_expiry_timestamp_seconds{account}}}"
    ));
    assert!(expiry > now + 3000.0, "{expiry} against {now}");
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("the server refused the login"), "{log}");
}

#[test]
fn a_revoked_sign_in_makes_its_mailbox_not_ready_while_another_goes_on() {
    let provider = Provider::start();
    let Some(stack) = MailStack::start_oauth2(&provider.url("/introspect")) else {
        return;
    };
    let env = TestEnv::new();
    let token_file = env.path("support.token");
    let revoked = provider.refresh_token_for(SUPPORT);
    provider.revoke(SUPPORT);
    write_token(&token_file, &revoked);
    let billing_pass = env.path("billing.pass");
    std::fs::write(&billing_pass, "secret\n").unwrap();
    let imap = provider.imap_table(&stack, SUPPORT, &token_file);
    let billing = stack.imap_config(BILLING, &billing_pass);
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, &billing, &stack.smtp_config(1)),
    )
    .unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_until("support failing", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: failing")
    });
    let (status, body) = daemon.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(body.contains("billing: connected"), "{body}");
    assert!(daemon.log().contains("AADSTS70008"), "{}", daemon.log());
    assert_eq!(
        daemon.metric(&format!(
            "deskmail_oauth2_last_refresh_ok{{account=\"{SUPPORT}\"}}"
        )),
        0.0
    );

    // Billing goes on.
    mail_in(
        &stack,
        &daemon,
        "anna@acme.example",
        BILLING,
        "o-3@acme.example",
        1,
    );

    // The admin signs in again (as `deskmail auth login` would store it): the mailbox picks
    // the new token up at its next attempt, without a restart.
    provider.signed_in(SUPPORT, &token_file);
    daemon.wait_until("support connected", Duration::from_secs(90), || {
        daemon.get("/readyz").1.contains("support: connected")
    });
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn client_credentials_log_in_without_a_sign_in() {
    let provider = Provider::start();
    let Some(stack) = MailStack::start_oauth2(&provider.url("/introspect")) else {
        return;
    };
    provider.app_acts_for(SUPPORT);
    let env = TestEnv::new();
    let secret = env.path("client.secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let table = provider
        .config(
            "mailboxes.imap.oauth2",
            "client_credentials",
            &env.path("unused"),
        )
        .lines()
        .filter(|l| !l.starts_with("token_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let imap = format!(
        "{}{table}\nclient_secret_file = \"{}\"\n",
        stack.imap_oauth2_config(SUPPORT),
        secret.display()
    );
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&imap, "", &stack.smtp_config(1)),
    )
    .unwrap();
    let status = env.ok(&["auth", "status"]);
    assert!(status.contains("client credentials; OK"), "{status}");
    let daemon = Daemon::start(&env);
    daemon.wait_until("support connected", Duration::from_secs(30), || {
        daemon.get("/readyz").1.contains("support: connected")
    });
    assert!(
        provider
            .requests()
            .iter()
            .all(|r| r == "client_credentials ok"),
        "{:?}",
        provider.requests()
    );
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn oauth2_settings_that_cannot_work_are_refused_naming_their_key() {
    let env = TestEnv::new();
    let imap = |table: &str| {
        format!(
            "[mailboxes.imap]\nhost = \"imap.example.com\"\nusername = \"{SUPPORT}\"\nauth = \"oauth2\"\n[mailboxes.imap.oauth2]\n{table}"
        )
    };
    let cases = [
        (
            "provider = \"google\"\nclient_id = \"x\"\nflow = \"device\"\ntoken_file = \"t\"\n",
            "mailboxes[0].imap.oauth2.flow: Google's device flow does not allow the Gmail scope",
        ),
        (
            "provider = \"microsoft\"\nclient_id = \"x\"\nflow = \"client_credentials\"\n",
            "mailboxes[0].imap.oauth2.client_secret_file: is needed with flow = \"client_credentials\"",
        ),
        (
            "provider = \"custom\"\nclient_id = \"x\"\ntoken_url = \"http://auth.example.com/token\"\nscopes = [\"a\"]\nflow = \"authorization_code\"\nauthorize_url = \"https://auth.example.com/a\"\ntoken_file = \"t\"\n",
            "mailboxes[0].imap.oauth2.token_url: http://auth.example.com/token: an https:// address",
        ),
        (
            "provider = \"microsoft\"\nclient_id = \"x\"\n",
            "mailboxes[0].imap.oauth2.token_file: is needed",
        ),
        (
            "provider = \"microsoft\"\nclient_id = \"x\"\ntoken_file = \"t\"\nclient_secret_expires = \"June\"\n",
            "mailboxes[0].imap.oauth2.client_secret_expires: \"June\" is not a date",
        ),
    ];
    for (table, expected) in cases {
        std::fs::write(
            env.config(),
            support::example_config_with_mailboxes(&imap(table), "", ""),
        )
        .unwrap();
        let stderr = env.fails(&["check-config"]);
        assert!(stderr.contains(expected), "{table}\n{stderr}");
    }
    // A password and an oauth2 table at once.
    let both = format!(
        "{}client_id = \"x\"\n",
        imap("provider = \"microsoft\"\ntoken_file = \"t\"\n")
    )
    .replace("auth = \"oauth2\"\n", "password_file = \"p\"\n");
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&both, "", ""),
    )
    .unwrap();
    let stderr = env.fails(&["check-config"]);
    assert!(
        stderr.contains("set password_file or an oauth2 table, not both"),
        "{stderr}"
    );
}

#[test]
fn an_smtp_server_that_refuses_the_token_gets_a_new_one_and_the_mail_goes() {
    let provider = Provider::start();
    let Some(stack) = MailStack::start_oauth2(&provider.url("/introspect")) else {
        return;
    };
    let env = TestEnv::new();
    // The mailbox logs in with its password; only SMTP uses OAuth2.
    let pass = env.path("support.pass");
    std::fs::write(&pass, "secret\n").unwrap();
    let token_file = env.path("smtp.token");
    provider.signed_in(SUPPORT, &token_file);
    let smtp = provider.smtp_table(&stack, SUPPORT, &token_file);
    std::fs::write(
        env.config(),
        support::example_config_with_mailboxes(&stack.imap_config(SUPPORT, &pass), "", &smtp),
    )
    .unwrap();
    let daemon = Daemon::start(&env);
    mail_in(
        &stack,
        &daemon,
        "anna@acme.example",
        SUPPORT,
        "s-1@acme.example",
        1,
    );
    assert_eq!(stack.wait_for("anna@acme.example", 1).len(), 1);

    // The token stops working, and Postfix restarts: the next connection's XOAUTH2 is refused
    // (a 334 with the reason, then 535). The token is forgotten, the notification retried
    // with a new one.
    provider.expire_access_tokens();
    stack.stop_postfix();
    stack.start_postfix();
    mail_in(
        &stack,
        &daemon,
        "ben@acme.example",
        SUPPORT,
        "s-2@acme.example",
        2,
    );
    daemon.wait_until("Ben acknowledged", Duration::from_secs(90), || {
        stack.inbox("ben@acme.example").len() == 1
    });
    let refreshes = provider
        .requests()
        .iter()
        .filter(|r| *r == "refresh_token ok")
        .count();
    assert_eq!(refreshes, 2, "{:?}", provider.requests());
    let (status, _, log) = daemon.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("delivery deferred")
            && log.contains("(535): 5.7.8 Error: authentication failed"),
        "{log}"
    );
}
