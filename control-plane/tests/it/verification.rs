//! E-mail verification through the outbox and through SMTP, with a fake SMTP server on loopback.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::harness::{assert_error, TestServer};

/// Returns the text of every `.eml` file in the outbox, oldest first.
pub fn outbox_mails(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("outbox")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    paths.sort();
    paths.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect()
}

/// Decodes a quoted-printable body: drops soft line breaks (`=` at a line end) and replaces
/// `=XX` with the byte XX. Messages without that encoding are returned unchanged.
pub fn decoded(mail: &str) -> String {
    if !mail.contains("Content-Transfer-Encoding: quoted-printable") {
        return mail.to_owned();
    }
    let bytes = mail.replace("=\r\n", "").into_bytes();
    let mut output = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'=', Some(byte)) => {
                output.push(byte);
                index += 3;
            }
            (byte, _) => {
                output.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(output).unwrap()
}

/// Extracts the verification token from the link in a message.
pub fn verification_token(mail: &str) -> String {
    let text = decoded(mail);
    let start = text.find("verify-email?token=").unwrap_or_else(|| panic!("no verification link in {mail}")) + 19;
    text[start..].chars().take_while(char::is_ascii_hexdigit).collect()
}

async fn verify(server: &TestServer, token: &str) -> (StatusCode, Value) {
    server.request(Method::GET, &format!("/api/v1/auth/verify-email?token={token}"), None, None).await
}

/// Sets `expires_at` of every verification token to one minute ago, directly in the database.
async fn expire_verification_tokens(server: &TestServer) {
    let expired = chrono::Utc::now() - chrono::Duration::minutes(1);
    let sql = "UPDATE email_verification_tokens SET expires_at = $1";
    match &server.config.database_url {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).bind(expired).execute(&pool).await.unwrap();
            pool.close().await;
        }
        None => {
            let url = format!("sqlite://{}", server.data_dir().join("mockforge.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sql).bind(expired).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

fn assert_token_rejected(status: StatusCode, body: &Value, reason: &str) {
    assert_error(status, body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(body["details"]["field"], "token", "{body}");
    assert!(body["error"].as_str().unwrap().contains(reason), "expected {reason:?} in {body}");
}

/// Accepts SMTP connections on loopback and sends the DATA of every message to the channel.
/// It speaks only the commands a client without authentication or STARTTLS sends.
async fn fake_smtp_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 localhost fake SMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let command = line.to_ascii_uppercase();
                    let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                        b"250 localhost\r\n"
                    } else if command.starts_with("MAIL") || command.starts_with("RCPT") || command.starts_with("RSET") || command.starts_with("NOOP") {
                        b"250 OK\r\n"
                    } else if command.starts_with("DATA") {
                        write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                            data.push_str("\r\n");
                        }
                        let _ = sender.send(data);
                        b"250 OK queued\r\n"
                    } else if command.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"502 command not implemented\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, receiver)
}

async fn next_message(receiver: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv())
        .await
        .expect("the fake SMTP server received no message within 10 seconds")
        .unwrap()
}

backend_tests! {
    async fn verification_link_in_outbox(backend) {
        let server = TestServer::start(backend, |config| config.public_api_url = "https://api.example.test/".to_owned()).await;
        let account = server.register("vera").await;

        let mails = outbox_mails(&server.data_dir());
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].contains("To: vera@example.com"), "{}", mails[0]);
        assert!(mails[0].contains("Subject: Verify your e-mail address"), "{}", mails[0]);
        assert!(decoded(&mails[0]).contains("https://api.example.test/api/v1/auth/verify-email?token="), "{}", mails[0]);
        let token = verification_token(&mails[0]);
        assert_eq!(token.len(), 64, "{token}");

        let (status, body) = verify(&server, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({ "message": "Email verified successfully" }));

        let (status, body) = verify(&server, &token).await;
        assert_token_rejected(status, &body, "already used");

        let (status, body) = server.post("/api/v1/auth/resend-verification", &account.token, &json!({})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "email");
    }

    async fn verification_rejects_bad_tokens(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        server.register("walt").await;

        let (status, body) = verify(&server, &"0".repeat(64)).await;
        assert_token_rejected(status, &body, "no such verification token");

        let (status, body) = server.request(Method::GET, "/api/v1/auth/verify-email", None, None).await;
        assert_token_rejected(status, &body, "missing");

        let (status, body) = verify(&server, "").await;
        assert_token_rejected(status, &body, "missing");
    }

    async fn verification_token_expires(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        server.register("eve").await;
        let token = verification_token(&outbox_mails(&server.data_dir())[0]);

        expire_verification_tokens(&server).await;
        let (status, body) = verify(&server, &token).await;
        assert_token_rejected(status, &body, "expired");
    }

    async fn resend_replaces_previous_link(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("rene").await;
        let first = verification_token(&outbox_mails(&server.data_dir())[0]);

        let (status, body) = server.request(Method::POST, "/api/v1/auth/resend-verification", None, Some(&json!({}))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let (status, body) = server.post("/api/v1/auth/resend-verification", &account.token, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({ "message": "Verification email sent" }));
        let mails = outbox_mails(&server.data_dir());
        assert_eq!(mails.len(), 2, "{mails:?}");
        let second = verification_token(&mails[1]);
        assert_ne!(first, second);

        let (status, body) = verify(&server, &first).await;
        assert_token_rejected(status, &body, "no such verification token");
        let (status, body) = verify(&server, &second).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn mail_sent_through_smtp(backend) {
        let (port, mut messages) = fake_smtp_server().await;
        let server = TestServer::start(backend, |config| {
            config.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
            config.mail_from = "MockForge Test <noreply@mockforge.test>".to_owned();
        })
        .await;
        let account = server.register("sam").await;

        let message = next_message(&mut messages).await;
        assert!(message.contains("To: sam@example.com"), "{message}");
        assert!(message.contains("From: \"MockForge Test\" <noreply@mockforge.test>") || message.contains("From: MockForge Test <noreply@mockforge.test>"), "{message}");
        assert!(decoded(&message).contains("http://localhost:8080/api/v1/auth/verify-email?token="), "{message}");
        let token = verification_token(&message);
        let (status, body) = verify(&server, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let request = json!({ "category": "technical", "priority": "low", "subject": "Question", "message": "How do I rotate tokens?" });
        let (status, body) = server.post("/api/v1/support/contact", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let message = next_message(&mut messages).await;
        assert!(message.contains("To: support@mockforge.dev"), "{message}");
        assert!(message.contains("Reply-To: sam@example.com"), "{message}");
        assert!(message.contains(body["ticket_id"].as_str().unwrap()), "{message}");
        assert!(decoded(&message).contains("How do I rotate tokens?"), "{message}");

        assert!(outbox_mails(&server.data_dir()).is_empty(), "nothing goes to the outbox when SMTP is configured");
    }
}
