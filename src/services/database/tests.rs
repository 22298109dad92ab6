#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::json;
use tonic::Code;

use super::*;
use crate::database::{InitializeResponse, NewUserRequest, NewUserResponse};
use crate::proto::dbplugin::v5::database_server::Database as _;

/// A root password that is its own marker: wherever it shows up, it leaked.
const ROOT_PASSWORD: &str = "root-pw-LEAK-MARKER-7f3a";
/// A generated user password, the same.
const USER_PASSWORD: &str = "user-pw-LEAK-MARKER-91c2";

/// A database in memory that says its secrets in its errors, as a careless driver would.
#[derive(Default)]
struct Careless {
    config: Mutex<serde_json::Map<String, Value>>,
    users: Mutex<BTreeSet<String>>,
    seen: Mutex<Option<String>>,
}

impl Careless {
    fn root_password(&self) -> String {
        self.config
            .lock()
            .unwrap()
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

use serde_json::Value;

impl Database for Careless {
    const TYPE: &'static str = "careless";

    async fn initialize(&self, request: InitializeRequest) -> Result<InitializeResponse, Error> {
        *self.config.lock().unwrap() = request.config.clone();
        if request.config.get("fail").is_some() {
            return Err(Error::new(format!(
                "cannot connect as root with password {}",
                self.root_password()
            )));
        }
        Ok(InitializeResponse::new(request.config))
    }

    async fn new_user(&self, request: NewUserRequest) -> Result<NewUserResponse, Error> {
        // What a log line or a panic message would show of the secrets while the call runs.
        *self.seen.lock().unwrap() = crate::logging::mask::redact(&format!(
            "root {} user {}",
            self.root_password(),
            request.password
        ));
        if request.statements.is_empty() {
            return Err(Error::new(format!(
                "no statements to create a user with password {} (root {})",
                request.password,
                self.root_password()
            )));
        }
        let name = format!("v-{}-{}", request.display_name, request.role_name);
        self.users.lock().unwrap().insert(name.clone());
        Ok(NewUserResponse::new(name))
    }

    async fn update_user(&self, request: UpdateUserRequest) -> Result<(), Error> {
        match request.password {
            Some(change) if !self.users.lock().unwrap().contains(&request.username) => Err(
                Error::new(format!("no user to give password {}", change.new_password)),
            ),
            _ => Ok(()),
        }
    }

    async fn delete_user(&self, request: DeleteUserRequest) -> Result<(), Error> {
        self.users.lock().unwrap().remove(&request.username);
        Ok(())
    }

    fn secrets(&self) -> Vec<(String, String)> {
        vec![(self.root_password(), "[password]".to_owned())]
    }
}

struct Factory;

impl DatabaseFactory for Factory {
    type Database = Careless;

    fn create(&self) -> Result<Careless, Error> {
        Ok(Careless::default())
    }
}

fn service() -> DatabaseService<Factory> {
    DatabaseService::new(Factory, true)
}

/// A request carrying `multiplex_id: id`.
fn for_id<T>(id: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(MULTIPLEX_ID_KEY, id.parse().unwrap());
    request
}

fn config(value: serde_json::Value) -> Option<prost_types::Struct> {
    let serde_json::Value::Object(map) = value else {
        panic!("not an object")
    };
    Some(wire::map_to_struct(map))
}

async fn initialize(service: &DatabaseService<Factory>, id: &str) {
    service
        .initialize(for_id(
            id,
            pb::InitializeRequest {
                config_data: config(json!({"password": ROOT_PASSWORD})),
                verify_connection: true,
            },
        ))
        .await
        .unwrap();
}

fn new_user_request(statements: &[&str]) -> pb::NewUserRequest {
    pb::NewUserRequest {
        username_config: Some(pb::UsernameConfig {
            display_name: "token".into(),
            role_name: "ro".into(),
        }),
        password: USER_PASSWORD.into(),
        statements: Some(pb::Statements {
            commands: statements.iter().map(|s| (*s).to_owned()).collect(),
        }),
        ..Default::default()
    }
}

fn assert_status(status: &Status, code: Code, message: &str) {
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
}

#[tokio::test]
async fn each_connection_is_its_own_instance_from_initialize_to_close() {
    let service = service();
    // Before Initialize there is no instance to create users in.
    let early = service
        .new_user(for_id("a", new_user_request(&["CREATE"])))
        .await
        .unwrap_err();
    assert_status(&early, Code::Unknown, "no database instance found");

    initialize(&service, "a").await;
    initialize(&service, "b").await;
    let created = service
        .new_user(for_id("a", new_user_request(&["CREATE"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.username, "v-token-ro");
    assert_eq!(service.instances.lock().len(), 2);
    let kind = service.r#type(for_id("b", pb::Empty {})).await.unwrap();
    assert_eq!(kind.into_inner().r#type, "careless");

    service.close(for_id("a", pb::Empty {})).await.unwrap();
    // Closing twice is no error; the closed connection is gone, the other stays.
    service.close(for_id("a", pb::Empty {})).await.unwrap();
    assert_eq!(service.instances.lock().len(), 1);
    let gone = service
        .delete_user(for_id(
            "a",
            pb::DeleteUserRequest {
                username: "v-token-ro".into(),
                statements: None,
            },
        ))
        .await
        .unwrap_err();
    assert_status(&gone, Code::Unknown, "no database instance found");
}

#[tokio::test]
async fn a_call_without_its_connection_id_is_refused_in_the_go_sdks_words() {
    let service = service();
    let bare = service
        .r#type(Request::new(pb::Empty {}))
        .await
        .unwrap_err();
    assert_status(&bare, Code::Unknown, "missing plugin multiplexing metadata");

    let mut other = Request::new(pb::Empty {});
    other
        .metadata_mut()
        .insert("something-else", "x".parse().unwrap());
    let absent = service.r#type(other).await.unwrap_err();
    assert_status(&absent, Code::Unknown, "no multiplexing ID found");

    let empty = service.r#type(for_id("", pb::Empty {})).await.unwrap_err();
    assert_status(&empty, Code::Unknown, "empty multiplex ID in metadata");

    let mut two = for_id("a", pb::Empty {});
    two.metadata_mut()
        .append(MULTIPLEX_ID_KEY, "b".parse().unwrap());
    let repeated = service.r#type(two).await.unwrap_err();
    assert_status(
        &repeated,
        Code::Unknown,
        "unexpected number of IDs in metadata: (2)",
    );
}

#[tokio::test]
async fn a_single_connection_process_needs_no_id() {
    let service = DatabaseService::new(Factory, false);
    let kind = service.r#type(Request::new(pb::Empty {})).await.unwrap();
    assert_eq!(kind.into_inner().r#type, "careless");
    let created = service
        .new_user(Request::new(new_user_request(&["CREATE"])))
        .await
        .unwrap();
    assert_eq!(created.into_inner().username, "v-token-ro");
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_in_the_go_sdks_words() {
    let service = service();
    initialize(&service, "a").await;
    let no_names = service
        .new_user(for_id(
            "a",
            pb::NewUserRequest {
                username_config: None,
                ..new_user_request(&["CREATE"])
            },
        ))
        .await
        .unwrap_err();
    assert_status(&no_names, Code::InvalidArgument, "missing username config");

    let no_username = service
        .update_user(for_id(
            "a",
            pb::UpdateUserRequest {
                password: Some(pb::ChangePassword {
                    new_password: "x".into(),
                    statements: None,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_status(&no_username, Code::InvalidArgument, "no username provided");

    // An empty password, an empty key and no expiration are no change at all.
    let nothing = service
        .update_user(for_id(
            "a",
            pb::UpdateUserRequest {
                username: "v-token-ro".into(),
                password: Some(pb::ChangePassword::default()),
                public_key: Some(pb::ChangePublicKey::default()),
                expiration: Some(pb::ChangeExpiration::default()),
                credential_type: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_status(
        &nothing,
        Code::InvalidArgument,
        "update user request has no changes",
    );

    let bad_time = service
        .new_user(for_id(
            "a",
            pb::NewUserRequest {
                expiration: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -1,
                }),
                ..new_user_request(&["CREATE"])
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_time.code(), Code::InvalidArgument);
    assert!(
        bad_time
            .message()
            .starts_with("unable to parse expiration date: "),
        "{bad_time:?}"
    );

    let no_delete_name = service
        .delete_user(for_id("a", pb::DeleteUserRequest::default()))
        .await
        .unwrap_err();
    assert_status(
        &no_delete_name,
        Code::InvalidArgument,
        "no username provided",
    );
}

#[tokio::test]
async fn errors_go_back_as_internal_with_every_password_masked() {
    let service = service();
    initialize(&service, "a").await;
    let failed = service
        .new_user(for_id("a", new_user_request(&[])))
        .await
        .unwrap_err();
    assert_status(
        &failed,
        Code::Internal,
        "unable to create new user: no statements to create a user with password [password] \
         (root [password])",
    );

    let update = service
        .update_user(for_id(
            "a",
            pb::UpdateUserRequest {
                username: "nobody".into(),
                password: Some(pb::ChangePassword {
                    new_password: USER_PASSWORD.into(),
                    statements: None,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_status(
        &update,
        Code::Internal,
        "unable to update user: no user to give password [password]",
    );

    let init = service
        .initialize(for_id(
            "b",
            pb::InitializeRequest {
                config_data: config(json!({"password": ROOT_PASSWORD, "fail": true})),
                verify_connection: true,
            },
        ))
        .await
        .unwrap_err();
    assert_status(
        &init,
        Code::Internal,
        "failed to initialize: cannot connect as root with password [password]",
    );
    for status in [&failed, &update, &init] {
        assert!(!format!("{status:?}").contains("LEAK-MARKER"), "{status:?}");
    }
}

#[tokio::test]
async fn the_configuration_comes_back_as_it_went_with_whole_numbers_as_integers() {
    let service = service();
    let sent = json!({
        "connection_url": "postgres://{{username}}:{{password}}@localhost/db",
        "max_open_connections": 4,
        "max_connection_lifetime": "30s",
        "ratio": 0.5,
        "verify": true,
        "nothing": null,
        "list": ["a", 1],
        "nested": {"k": 2}
    });
    let answer = service
        .initialize(for_id(
            "a",
            pb::InitializeRequest {
                config_data: config(sent.clone()),
                verify_connection: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let back = serde_json::Value::Object(wire::struct_to_map(answer.config_data.unwrap()));
    assert_eq!(back, sent);
    // What the plugin saw: the integer as an integer, not 4.0.
    let instance = service.existing(&for_id("a", ()).into_parts().0).unwrap();
    assert_eq!(
        instance.config.lock().unwrap()["max_open_connections"],
        json!(4)
    );
}

#[tokio::test]
async fn secrets_are_kept_out_of_logs_and_panics_while_they_are_held() {
    // Secrets of this test's own: the registry is the process's, shared with parallel tests.
    let (root, user) = ("root-pw-held-LEAK-0a4c", "user-pw-held-LEAK-5e0c");
    let service = service();
    service
        .initialize(for_id(
            "a",
            pb::InitializeRequest {
                config_data: config(json!({"password": root})),
                verify_connection: true,
            },
        ))
        .await
        .unwrap();
    service
        .new_user(for_id(
            "a",
            pb::NewUserRequest {
                password: user.into(),
                ..new_user_request(&["CREATE"])
            },
        ))
        .await
        .unwrap();
    let instance = service.existing(&for_id("a", ()).into_parts().0).unwrap();
    assert_eq!(
        instance.seen.lock().unwrap().as_deref(),
        Some("root [redacted] user [redacted]")
    );
    // After the call only the instance's own secret is still held; after Close, nothing.
    let after = format!("root {root} user {user}");
    assert_eq!(
        crate::logging::mask::redact(&after).as_deref(),
        Some(format!("root [redacted] user {user}").as_str())
    );
    service.close(for_id("a", pb::Empty {})).await.unwrap();
    assert_eq!(crate::logging::mask::redact(&after), None);
}
