//! The admin page's people: the accounts and shared addresses (aliases) of the household;
//! add one, reset a password, delete (confirmed on the form with what it deletes).

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
                .map(|a| AccountRow {
                    deletes: format!(
                        "{} and all {} of its messages ({})",
                        a.address,
                        a.messages,
                        human_bytes(a.bytes)
                    ),
                    storage: format!("{} messages, {}", a.messages, human_bytes(a.bytes)),
                    administrator: a.administrator,
                    myself: a.address == signed.account,
                    address: a.address,
                })
                .collect(),
            aliases: aliases
                .into_iter()
                .map(|(address, targets)| AliasRow {
                    address,
                    targets: targets.join(", "),
                })
                .collect(),
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
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
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
    let hash = match web.auth.hash(&Secret::new(form.password)).await {
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
    tracing::info!(%address, administrator, by = %signed.account, "web: account added");
    accounts_view(
        &web,
        &signed,
        Some(format!("{address} can now log in and get mail.")),
        None,
        StatusCode::OK,
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
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let result = match web.auth.hash(&Secret::new(form.password)).await {
        Ok(hash) => web
            .store
            .set_password(&form.address, &hash)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        return accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // Whoever was logged in with the old password is logged out.
    web.end_sessions(&form.address, Some(&signed.csrf));
    tracing::info!(address = %form.address, by = %signed.account, "web: password reset");
    accounts_view(
        &web,
        &signed,
        Some(format!("{} has a new password.", form.address)),
        None,
        StatusCode::OK,
    )
    .await
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
    let refuse = |error: String| {
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
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
    web.end_sessions(&form.address, None);
    tracing::info!(address = %form.address, by = %signed.account, "web: account deleted");
    accounts_view(
        &web,
        &signed,
        Some(format!("{} and its mail are deleted.", form.address)),
        None,
        StatusCode::OK,
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
        accounts_view(
            &web,
            &signed,
            None,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
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
    accounts_view(
        &web,
        &signed,
        Some(format!(
            "Mail to {address} now goes to {}.",
            targets.join(", ")
        )),
        None,
        StatusCode::OK,
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
    accounts_view(
        &web,
        &signed,
        Some(format!("{} is deleted.", form.address)),
        None,
        StatusCode::OK,
    )
    .await
}
