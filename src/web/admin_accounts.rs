//! The admin page's people: the accounts and shared addresses (aliases) of the household;
//! add one, reset a password, set how much mail it may hold, delete (confirmed on the form
//! with what it deletes).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::admin::{admin_form, new_password};
use super::login::Signed;
use super::pages::{self, AccountRow, AliasRow};
use super::{Connection, Web};
use crate::secret::Secret;
use crate::status::human_bytes;

pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/accounts", get(accounts_page))
        .route("/admin/accounts/add", post(account_add))
        .route("/admin/accounts/password", post(account_password))
        .route("/admin/accounts/quota", post(account_quota))
        .route("/admin/accounts/delete", post(account_delete))
        .route("/admin/aliases/add", post(alias_add))
        .route("/admin/aliases/delete", post(alias_delete))
}

async fn accounts_page(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
) -> Response {
    let signed = match web
        .administrator(&headers, &connection, "/admin/accounts")
        .await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    accounts_view(&web, &signed, None, None, StatusCode::OK).await
}

async fn accounts_view(
    web: &Web,
    signed: &Signed,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    accounts_view_typed(web, signed, message, error, status, None).await
}

/// The page after a change that was made, saying what it did.
async fn done(web: &Web, signed: &Signed, message: String) -> Response {
    accounts_view(web, signed, Some(message), None, StatusCode::OK).await
}

/// The page after a change that was refused, saying why.
async fn refused(web: &Web, signed: &Signed, error: String) -> Response {
    accounts_view(
        web,
        signed,
        None,
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Which add form was refused.
enum Typed<'a> {
    Person(&'a AccountForm),
    Alias(&'a AccountForm),
}

/// The page, with the add forms filled as `typed` was sent (after a refusal, so that nothing
/// has to be typed again but the passwords).
async fn accounts_view_typed(
    web: &Web,
    signed: &Signed,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
    typed: Option<Typed<'_>>,
) -> Response {
    let (accounts, aliases) = match (web.store.accounts().await, web.store.aliases().await) {
        (Ok(accounts), Ok(aliases)) => (accounts, aliases),
        (Err(error), _) | (_, Err(error)) => {
            return pages::message(
                &web.config().hostname,
                "Accounts",
                vec![error.to_string()],
                None,
            );
        }
    };
    pages::render(
        status,
        &pages::AdminAccountsPage {
            frame: web.signed_frame(signed, "People and addresses"),
            domains: web.config().domains.clone(),
            accounts: accounts
                .into_iter()
                .map(|a| {
                    let messages = match a.messages {
                        1 => "1 message".to_string(),
                        n => format!("{n} messages"),
                    };
                    AccountRow {
                        deletes: format!(
                            "{} and all its mail ({messages}, {})",
                            a.address,
                            human_bytes(a.bytes)
                        ),
                        storage: match a.quota {
                            Some(limit) => format!(
                                "{messages}, {} of the {} it may hold",
                                human_bytes(a.bytes),
                                human_bytes(limit)
                            ),
                            None => format!("{messages}, {}", human_bytes(a.bytes)),
                        },
                        quota: a.quota.map(size_for_form).unwrap_or_default(),
                        space_warning: a.quota.and_then(|limit| space_warning(a.bytes, limit)),
                        administrator: a.administrator,
                        myself: a.address == signed.account,
                        address: a.address,
                    }
                })
                .collect(),
            aliases: aliases
                .into_iter()
                .map(|(address, targets)| AliasRow {
                    address,
                    targets: targets.join(", "),
                })
                .collect(),
            typed: match typed {
                Some(Typed::Person(form)) => pages::TypedForms {
                    person_name: form.name.clone(),
                    person_domain: form.domain.clone(),
                    person_quota: form.quota.clone(),
                    person_administrator: form.administrator == "yes",
                    ..Default::default()
                },
                Some(Typed::Alias(form)) => pages::TypedForms {
                    alias_name: form.name.clone(),
                    alias_domain: form.domain.clone(),
                    alias_targets: form.targets.clone(),
                    ..Default::default()
                },
                None => pages::TypedForms::default(),
            },
            message,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    name: String,
    domain: String,
    address: String,
    password: String,
    repeat: String,
    administrator: String,
    confirm: String,
    targets: String,
    quota: String,
}

/// The space an account may hold, as typed on the page: empty (or "none") for no limit, else
/// a number with its unit. A bare number is refused rather than read as octets: "2" is
/// nearly always meant as 2 GB.
fn quota_from_form(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "Say the unit of {text:?}: for example {text} GiB or {text} MiB."
        ));
    }
    let bytes = crate::units::parse_size(text)
        .map_err(|_| format!("{text:?} is not a size: write, for example, 2 GiB or 500 MiB."))?;
    if bytes < QUOTA_MIN {
        return Err(format!(
            "{text} is too little to hold mail: give at least 1 MiB, or leave it empty for no limit."
        ));
    }
    Ok(Some(bytes))
}

/// What to tell the administrator about an account near or at its limit.
fn space_warning(used: u64, limit: u64) -> Option<String> {
    if used >= limit {
        Some(
            "Full: new mail for it waits at the sender's server (for a few days) until some is \
             deleted or the space is raised."
                .into(),
        )
    } else if used >= limit / 10 * 9 {
        Some("Nearly full: over 90 % of its space is used.".into())
    } else {
        None
    }
}

/// The smallest limit the page sets: below it nearly every message would be refused.
const QUOTA_MIN: u64 = 1 << 20;

/// `bytes` as the quota field shows it, in a form `quota_from_form` reads back to the same
/// number ("1.5 GiB", "500 MB", or octets).
fn size_for_form(bytes: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1000, "KB"),
    ];
    for (unit, name) in UNITS {
        if bytes >= unit && (u128::from(bytes) * 100) % u128::from(unit) == 0 {
            let hundredths = u128::from(bytes) * 100 / u128::from(unit);
            let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
            let text = text.trim_end_matches('0').trim_end_matches('.');
            return format!("{text} {name}");
        }
    }
    format!("{bytes} B")
}

/// The admin's forms: the session and its token first.
async fn account_add(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let config = web.config();
    let refuse = |error: String| {
        accounts_view_typed(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Typed::Person(&form)),
        )
    };
    if !config.domains.contains(&form.domain) {
        return refuse(format!("{} is not one of this box's domains.", form.domain)).await;
    }
    let local = match super::draft::check_local_part(&form.name, &[]) {
        Ok(local) => local,
        Err(error) => return refuse(error).await,
    };
    let address = format!("{local}@{}", form.domain);
    if let Err(error) = new_password(&address, &form.password, &form.repeat) {
        return refuse(error).await;
    }
    let quota = match quota_from_form(&form.quota) {
        Ok(quota) => quota,
        Err(error) => return refuse(error).await,
    };
    let hash = match web.auth.hash(&Secret::new(form.password.clone())).await {
        Ok(hash) => hash,
        Err(error) => return refuse(error.to_string()).await,
    };
    let administrator = form.administrator == "yes";
    if let Err(error) = web
        .store
        .create_account_as(&address, &hash, administrator)
        .await
    {
        return refuse(error.to_string()).await;
    }
    if quota.is_some()
        && let Err(error) = web.store.set_quota(&address, quota).await
    {
        return refuse(error.to_string()).await;
    }
    tracing::info!(%address, administrator, quota, by = %signed.account, "web: account added");
    done(
        &web,
        &signed,
        format!("{address} can now log in and get mail."),
    )
    .await
}

async fn account_password(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if let Err(error) = new_password(&form.address, &form.password, &form.repeat) {
        return refused(&web, &signed, error).await;
    }
    let result = match web.auth.hash(&Secret::new(form.password)).await {
        Ok(hash) => web
            .store
            .set_password(&form.address, &hash)
            .await
            .map(|()| hash)
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let hash = match result {
        Ok(hash) => hash,
        Err(error) => {
            return refused(&web, &signed, error).await;
        }
    };
    // Whoever was logged in with the old password is logged out.
    web.password_changed(&form.address, &hash, &signed.csrf);
    tracing::info!(address = %form.address, by = %signed.account, "web: password reset");
    done(
        &web,
        &signed,
        format!("{} has a new password.", form.address),
    )
    .await
}

async fn account_quota(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let result = match quota_from_form(&form.quota) {
        Ok(quota) => web
            .store
            .set_quota(&form.address, quota)
            .await
            .map(|()| quota)
            .map_err(|e| e.to_string()),
        Err(error) => Err(error),
    };
    let quota = match result {
        Ok(quota) => quota,
        Err(error) => {
            return refused(&web, &signed, error).await;
        }
    };
    tracing::info!(address = %form.address, quota, by = %signed.account, "web: quota set");
    let message = match quota {
        Some(limit) => format!(
            "{} may now hold {} of mail; more is refused (the sender is told the mailbox is full).",
            form.address,
            human_bytes(limit)
        ),
        None => format!("{} may now hold mail without a limit.", form.address),
    };
    done(&web, &signed, message).await
}

async fn account_delete(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let refuse = |error: String| refused(&web, &signed, error);
    if form.address == signed.account {
        return refuse("You cannot delete the account you are logged in with.".into()).await;
    }
    if form.confirm != "yes" {
        return refuse("Tick the box to confirm that the account and its mail are deleted.".into())
            .await;
    }
    if let Err(error) = web.store.delete_account(&form.address).await {
        return refuse(error.to_string()).await;
    }
    web.end_sessions(&form.address);
    tracing::info!(address = %form.address, by = %signed.account, "web: account deleted");
    done(
        &web,
        &signed,
        format!("{} and its mail are deleted.", form.address),
    )
    .await
}

async fn alias_add(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let config = web.config();
    let refuse = |error: String| {
        accounts_view_typed(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Typed::Alias(&form)),
        )
    };
    if !config.domains.contains(&form.domain) {
        return refuse(format!("{} is not one of this box's domains.", form.domain)).await;
    }
    let local = match super::draft::check_local_part(&form.name, &[]) {
        Ok(local) => local,
        Err(error) => return refuse(error).await,
    };
    let address = format!("{local}@{}", form.domain);
    let targets: Vec<String> = form
        .targets
        .split([',', ' ', '\n'])
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return refuse("Name at least one account the address delivers to.".into()).await;
    }
    if let Some(bad) = targets.iter().find(|t| {
        !t.rsplit_once('@')
            .is_some_and(|(_, domain)| config.is_local_domain(domain))
    }) {
        return refuse(format!("{bad} is not an address of this box.")).await;
    }
    if let Err(error) = web.store.set_alias(&address, &targets).await {
        return refuse(error.to_string()).await;
    }
    done(
        &web,
        &signed,
        format!("Mail to {address} now goes to {}.", targets.join(", ")),
    )
    .await
}

async fn alias_delete(
    State(web): State<Arc<Web>>,
    Extension(connection): Extension<Connection>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let signed = match admin_form(&web, &headers, &connection, "/admin/accounts", &form.csrf).await
    {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if let Err(error) = web.store.delete_alias(&form.address).await {
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error.to_string()),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    done(&web, &signed, format!("{} is deleted.", form.address)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_read_from_the_form_and_shown_back_the_same() {
        assert_eq!(quota_from_form(" "), Ok(None));
        assert_eq!(quota_from_form("None"), Ok(None));
        assert_eq!(quota_from_form("2 GiB"), Ok(Some(2 << 30)));
        assert_eq!(quota_from_form("1.5GiB"), Ok(Some(3 << 29)));
        assert_eq!(quota_from_form("500 MB"), Ok(Some(500_000_000)));
        for refused in ["2", "1.5", "lots", "512 KiB", "-1 GiB"] {
            assert!(quota_from_form(refused).is_err(), "{refused}");
        }
        for bytes in [
            2 << 30,
            3 << 29,
            500_000_000,
            2_500_000_000,
            1 << 20,
            1_234_567_891,
        ] {
            let shown = size_for_form(bytes);
            assert_eq!(quota_from_form(&shown), Ok(Some(bytes)), "{shown}");
        }
        assert_eq!(size_for_form(3 << 29), "1.5 GiB");
        assert_eq!(size_for_form(500_000_000), "500 MB");
    }

    #[test]
    fn an_account_near_or_at_its_limit_is_pointed_out() {
        assert_eq!(space_warning(899, 1000), None);
        assert!(space_warning(900, 1000).unwrap().starts_with("Nearly full"));
        assert!(space_warning(1000, 1000).unwrap().starts_with("Full"));
        assert!(space_warning(5000, 1000).unwrap().starts_with("Full"));
    }
}
