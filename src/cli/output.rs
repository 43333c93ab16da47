//! How the command line prints a daemon's (or this process's) answer: one plain line or a
//! small table per request, or the JSON itself with `--json`.

use letterbox::admin::Request;
use serde_json::Value;

pub fn print_response(request: &Request, data: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(data).unwrap_or_default());
        return;
    }
    match request {
        Request::UserAdd { .. } => println!("added {}", data["address"].as_str().unwrap_or("")),
        Request::UserPasswd { .. } => println!(
            "password changed for {}",
            data["address"].as_str().unwrap_or("")
        ),
        Request::UserDelete { .. } => {
            println!("deleted {}", data["address"].as_str().unwrap_or(""))
        }
        Request::UserQuota { .. } => match data["quota"].as_u64() {
            Some(quota) => println!(
                "{} may hold {}",
                data["address"].as_str().unwrap_or(""),
                letterbox::status::human_bytes(quota)
            ),
            None => println!("{} has no quota", data["address"].as_str().unwrap_or("")),
        },
        Request::AliasAdd { .. } => println!(
            "{} -> {}",
            data["address"].as_str().unwrap_or(""),
            join(&data["targets"])
        ),
        Request::AliasDelete { .. } => {
            println!("deleted alias {}", data["address"].as_str().unwrap_or(""))
        }
        Request::UserList => {
            for account in data.as_array().into_iter().flatten() {
                let quota = account["quota"].as_u64().map_or(String::new(), |quota| {
                    format!(" of {}", letterbox::status::human_bytes(quota))
                });
                println!(
                    "{:<40} {:>6} messages  {}{quota}{}",
                    account["address"].as_str().unwrap_or(""),
                    account["messages"].as_u64().unwrap_or(0),
                    letterbox::status::human_bytes(account["bytes"].as_u64().unwrap_or(0)),
                    if account["administrator"].as_bool() == Some(true) {
                        "  administrator"
                    } else {
                        ""
                    }
                );
            }
        }
        Request::AliasList => {
            for alias in data.as_array().into_iter().flatten() {
                println!(
                    "{} -> {}",
                    alias["address"].as_str().unwrap_or(""),
                    join(&alias["targets"])
                );
            }
        }
        Request::Button { .. } => println!("pressed {}", data["press"].as_str().unwrap_or("")),
        Request::Panel => println!("{data}"),
        Request::Setup { .. } => match data["mode"].as_str() {
            Some("setup") => println!("setup mode on"),
            Some("normal") => println!("setup mode off"),
            Some(other) => println!("mode: {other}"),
            None => println!("{data}"),
        },
        Request::WifiJoin { ssid, .. } => match data["joining"].as_str() {
            Some("after_hotspot") => println!(
                "joining {ssid} once the setup hotspot is down; `letterbox status` shows how it went"
            ),
            _ => println!("joined {ssid}"),
        },
        Request::QueueList => print_queue(data),
        Request::Export { path, .. } => {
            println!(
                "exported {} messages ({}) in {} folders of {} accounts to {}",
                data["messages"].as_u64().unwrap_or(0),
                letterbox::status::human_bytes(data["bytes"].as_u64().unwrap_or(0)),
                data["folders"].as_u64().unwrap_or(0),
                data["accounts"].as_u64().unwrap_or(0),
                path.display()
            );
            let dropped = data["keywords_dropped"].as_u64().unwrap_or(0);
            if dropped > 0 {
                println!("{dropped} keywords were left out: a Maildir folder numbers at most 26");
            }
        }
        Request::SpamTrain { .. } => {
            println!(
                "learned {} spam and {} ham messages ({} of them known already); the filter knows {} tokens",
                data["spam"].as_u64().unwrap_or(0),
                data["ham"].as_u64().unwrap_or(0),
                data["unchanged"].as_u64().unwrap_or(0),
                data["tokens"].as_u64().unwrap_or(0)
            );
        }
        Request::SpamClassify { .. } => println!("{data}"),
        Request::Import { path, .. } => {
            println!(
                "imported {} messages ({}) into {} folders from {}",
                data["messages"].as_u64().unwrap_or(0),
                letterbox::status::human_bytes(data["bytes"].as_u64().unwrap_or(0)),
                data["folders"].as_u64().unwrap_or(0),
                path.display()
            );
            let too_large = data["too_large"].as_u64().unwrap_or(0);
            if too_large > 0 {
                println!("{too_large} messages were left out: larger than limits.max_append_size");
            }
        }
        Request::QueueFlush => println!(
            "{} recipients will be tried now",
            data["flushed"].as_u64().unwrap_or(0)
        ),
        Request::QueueDelete { .. } => {
            println!(
                "deleted queued message {}",
                data["id"].as_u64().unwrap_or(0)
            )
        }
        Request::Backup => println!("{}", data["said"].as_str().unwrap_or_default()),
        Request::Health => {
            match serde_json::from_value::<letterbox::health::Report>(data.clone()) {
                Ok(report) => print!("{}", report.render()),
                Err(_) => println!("{data}"),
            }
        }
        Request::Status => {
            match serde_json::from_value::<letterbox::status::Status>(data.clone()) {
                Ok(status) => print!("{}", status.render(letterbox::store::now_unix())),
                Err(_) => println!("{data}"),
            }
        }
    }
}

fn print_queue(data: &Value) {
    let now = letterbox::store::now_unix();
    let messages = data.as_array().map(Vec::as_slice).unwrap_or_default();
    if messages.is_empty() {
        println!("the queue is empty");
    }
    for message in messages {
        println!(
            "{:<6} {:<8} {:>10}  from <{}>",
            message["id"].as_u64().unwrap_or(0),
            letterbox::status::human_age(now - message["queued_at"].as_i64().unwrap_or(now)),
            letterbox::status::human_bytes(message["size"].as_u64().unwrap_or(0)),
            message["sender"].as_str().unwrap_or("")
        );
        for recipient in message["recipients"].as_array().into_iter().flatten() {
            let next = recipient["next_attempt"].as_i64().unwrap_or(0) - now;
            let next = if next > 0 {
                format!("next try in {}", letterbox::status::human_age(next))
            } else {
                "due now".to_string()
            };
            println!(
                "       to <{}>  {} attempts, {next}  {}",
                recipient["address"].as_str().unwrap_or(""),
                recipient["attempts"].as_u64().unwrap_or(0),
                recipient["last_error"].as_str().unwrap_or("")
            );
        }
    }
}

fn join(list: &Value) -> String {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
