//! The plugin: one [`PostgreSql`] per configured connection, as the Go plugin's `PostgreSQL`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::RwLock;
use vault_plugin_sdk::database::{
    ChangeExpiration, ChangePassword, Database, DatabaseFactory, DeleteUserRequest, Error,
    InitializeRequest, InitializeResponse, NewUserRequest, NewUserResponse, UpdateUserRequest,
};

use crate::config::{Config, PasswordAuthentication};
use crate::pool::Pool;
use crate::scram;
use crate::statements::{expiration, fill, quote_identifier, runs_whole, split};

/// The Go plugin's default statement for a new password.
const DEFAULT_PASSWORD_STATEMENT: &str =
    "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';";
/// The Go plugin's default statement for a new expiration.
const DEFAULT_EXPIRATION_STATEMENT: &str = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";

pub(crate) struct Factory;

impl DatabaseFactory for Factory {
    type Database = PostgreSql;

    fn create(&self) -> Result<PostgreSql, Error> {
        Ok(PostgreSql::default())
    }
}

/// A configured connection: nothing until `initialize`.
#[derive(Default)]
pub(crate) struct PostgreSql {
    state: RwLock<Option<Arc<Connected>>>,
    /// The root password, for masking; kept apart so `secrets` needs no lock held across
    /// an await.
    password: std::sync::Mutex<String>,
    /// Held across each user change, as the Go plugin holds its mutex: PostgreSQL's catalog
    /// rows that `GRANT`/`REVOKE ... ON DATABASE` and `... ON SCHEMA` rewrite cannot be changed
    /// by two transactions at once (`ERROR: tuple concurrently updated`); measured by the bench,
    /// 3% of revocations at 8 clients failed without it.
    changes: tokio::sync::Mutex<()>,
}

struct Connected {
    config: Config,
    pool: Pool,
}

impl PostgreSql {
    async fn connected(&self) -> Result<Arc<Connected>, Error> {
        self.state
            .read()
            .await
            .clone()
            .ok_or_else(|| Error::new("plugin has not been initialized"))
    }
}

/// A driver error in pgx's words where it is the server's (`ERROR: role "x" already exists
/// (SQLSTATE 42710)`), else the driver's with its causes.
pub(crate) fn pg_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn query_error(error: tokio_postgres::Error) -> Error {
    Error::new(pg_text(&error)).with_source(error)
}

/// `error` after `context`, as Go's `fmt.Errorf("context: %w", err)`.
fn with_context(context: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |error| Error::new(format!("{context}: {}", pg_text(&error))).with_source(error)
}

/// `{{password}}` as the configuration says it reaches PostgreSQL: as given, or a SCRAM
/// verifier.
fn password_value(auth: PasswordAuthentication, password: &str) -> Result<String, Error> {
    match auth {
        PasswordAuthentication::Password => Ok(password.to_owned()),
        PasswordAuthentication::ScramSha256 => scram::hash(password)
            .map_err(|_| Error::new("unable to scram-sha256 password: no random bytes for a salt")),
    }
}

impl Database for PostgreSql {
    const TYPE: &'static str = "pgx";

    async fn initialize(&self, request: InitializeRequest) -> Result<InitializeResponse, Error> {
        let config = Config::read(&request.config)?;
        let pool = Pool::new(&config)?;
        *self.password.lock().unwrap_or_else(|e| e.into_inner()) = config.password.clone();
        if request.verify_connection {
            let client = pool
                .get()
                .await
                .map_err(|e| Error::new(format!("error verifying connection: {e}")))?;
            client
                .simple_query("")
                .await
                .map_err(with_context("error verifying connection"))?;
        }
        if let Some(old) = self
            .state
            .write()
            .await
            .replace(Arc::new(Connected { config, pool }))
        {
            old.pool.close();
        }
        Ok(InitializeResponse::new(request.config))
    }

    async fn new_user(&self, request: NewUserRequest) -> Result<NewUserResponse, Error> {
        if request.statements.is_empty() {
            return Err(Error::new("empty creation statements"));
        }
        let _one_at_a_time = self.changes.lock().await;
        let connected = self.connected().await?;
        let names = BTreeMap::from([
            ("DisplayName".to_owned(), request.display_name.clone()),
            ("RoleName".to_owned(), request.role_name.clone()),
        ]);
        let username = connected
            .config
            .username_template
            .render(&names)
            .map_err(|e| Error::new(e.to_string()))?;
        let expires = expiration(request.expiration);
        let password = password_value(connected.config.password_authentication, &request.password)?;
        let values = [
            ("name", username.as_str()),
            ("username", username.as_str()),
            ("password", password.as_str()),
            ("expiration", expires.as_str()),
        ];
        let mut client = connected
            .pool
            .get()
            .await
            .map_err(|e| Error::new(format!("unable to get connection: {e}")))?;
        let transaction = client
            .transaction()
            .await
            .map_err(with_context("unable to start transaction"))?;
        for statement in &request.statements {
            let queries = if runs_whole(statement) {
                vec![statement.clone()]
            } else {
                split(statement)
            };
            for query in queries {
                transaction
                    .batch_execute(&fill(&query, &values))
                    .await
                    .map_err(with_context("failed to execute query"))?;
            }
        }
        transaction.commit().await.map_err(query_error)?;
        Ok(NewUserResponse::new(username))
    }

    async fn update_user(&self, request: UpdateUserRequest) -> Result<(), Error> {
        if request.username.is_empty() {
            return Err(Error::new("missing username"));
        }
        if request.password.is_none() && request.expiration.is_none() {
            return Err(Error::new("no changes requested"));
        }
        let _one_at_a_time = self.changes.lock().await;
        let connected = self.connected().await?;
        // Both changes are tried, each in its own transaction; their errors are joined.
        let mut errors = Vec::new();
        if let Some(change) = &request.password {
            if let Err(e) = change_password(&connected, &request.username, change).await {
                errors.push(e.message().to_owned());
            }
        }
        if let Some(change) = &request.expiration {
            if let Err(e) = change_expiration(&connected, &request.username, change).await {
                errors.push(e.message().to_owned());
            }
        }
        match errors.as_slice() {
            [] => Ok(()),
            errors => Err(Error::new(go_multierror(errors))),
        }
    }

    async fn delete_user(&self, request: DeleteUserRequest) -> Result<(), Error> {
        let _one_at_a_time = self.changes.lock().await;
        let connected = self.connected().await?;
        if request.statements.is_empty() {
            default_delete(&connected, &request.username).await
        } else {
            custom_delete(&connected, &request.username, &request.statements).await
        }
    }

    async fn close(&self) -> Result<(), Error> {
        if let Some(connected) = self.state.write().await.take() {
            connected.pool.close();
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<(String, String)> {
        let password = self
            .password
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        vec![(password, "[password]".to_owned())]
    }
}

/// go-multierror's text for `errors`.
fn go_multierror(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("\t* {e}")).collect();
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    format!(
        "{} {noun} occurred:\n{}\n\n",
        errors.len(),
        points.join("\n")
    )
}

async fn change_password(
    connected: &Connected,
    username: &str,
    change: &ChangePassword,
) -> Result<(), Error> {
    let statements = if change.statements.is_empty() {
        vec![DEFAULT_PASSWORD_STATEMENT.to_owned()]
    } else {
        change.statements.clone()
    };
    if change.new_password.is_empty() {
        return Err(Error::new("missing password"));
    }
    let mut client = connected
        .pool
        .get()
        .await
        .map_err(|e| Error::new(format!("unable to get connection: {e}")))?;
    // The Go plugin asks whether the role exists and goes on either way.
    client
        .query_one(
            "SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=$1);",
            &[&username],
        )
        .await
        .map_err(with_context("user does not appear to exist"))?;
    let transaction = client
        .transaction()
        .await
        .map_err(|e| Error::new(format!("unable to start transaction: {e}")))?;
    for statement in &statements {
        for query in split(statement) {
            let password = password_value(
                connected.config.password_authentication,
                &change.new_password,
            )?;
            let values = [
                ("name", username),
                ("username", username),
                ("password", password.as_str()),
            ];
            transaction
                .batch_execute(&fill(&query, &values))
                .await
                .map_err(with_context("failed to execute query"))?;
        }
    }
    transaction.commit().await.map_err(query_error)
}

async fn change_expiration(
    connected: &Connected,
    username: &str,
    change: &ChangeExpiration,
) -> Result<(), Error> {
    let statements = if change.statements.is_empty() {
        vec![DEFAULT_EXPIRATION_STATEMENT.to_owned()]
    } else {
        change.statements.clone()
    };
    let mut client = connected.pool.get().await?;
    let transaction = client.transaction().await.map_err(query_error)?;
    let expires = expiration(Some(change.new_expiration));
    let values = [
        ("name", username),
        ("username", username),
        ("expiration", expires.as_str()),
    ];
    for statement in &statements {
        for query in split(statement) {
            transaction
                .batch_execute(&fill(&query, &values))
                .await
                .map_err(query_error)?;
        }
    }
    transaction.commit().await.map_err(query_error)
}

async fn custom_delete(
    connected: &Connected,
    username: &str,
    statements: &[String],
) -> Result<(), Error> {
    let mut client = connected.pool.get().await?;
    let transaction = client.transaction().await.map_err(query_error)?;
    let values = [("name", username), ("username", username)];
    for statement in statements {
        let queries = if runs_whole(statement) {
            vec![statement.clone()]
        } else {
            split(statement)
        };
        for query in queries {
            transaction
                .batch_execute(&fill(&query, &values))
                .await
                .map_err(query_error)?;
        }
    }
    transaction.commit().await.map_err(query_error)
}

/// The Go plugin's revocation: nothing if the role is gone; else revoke what it was granted
/// (going on past errors, to take away as much as possible) and drop it.
async fn default_delete(connected: &Connected, username: &str) -> Result<(), Error> {
    let client = connected.pool.get().await?;
    let exists: bool = client
        .query_one(
            "SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=$1);",
            &[&username],
        )
        .await
        .map_err(query_error)?
        .get(0);
    if !exists {
        return Ok(());
    }
    let user = quote_identifier(username);
    let mut revocations = Vec::new();
    let schemas = client
        .query(
            "SELECT DISTINCT table_schema FROM information_schema.role_column_grants WHERE \
             grantee=$1;",
            &[&username],
        )
        .await
        .map_err(query_error)?;
    for row in schemas {
        let Ok(schema) = row.try_get::<_, String>(0) else {
            continue;
        };
        // Vault v1.14.1 leaves this schema name unquoted; OpenBao quotes it. Quoted here:
        // an unquoted name with capitals or spaces names another schema or fails.
        revocations.push(format!(
            "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {} FROM {user};",
            quote_identifier(&schema)
        ));
        revocations.push(format!(
            "REVOKE USAGE ON SCHEMA {} FROM {user};",
            quote_identifier(&schema)
        ));
    }
    revocations.push(format!(
        "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {user};"
    ));
    revocations.push(format!(
        "REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {user};"
    ));
    revocations.push(format!("REVOKE USAGE ON SCHEMA public FROM {user};"));
    let database: Option<String> = client
        .query_one("SELECT current_database();", &[])
        .await
        .map_err(query_error)?
        .get(0);
    if let Some(database) = database {
        revocations.push(format!(
            "REVOKE CONNECT ON DATABASE {} FROM {user};",
            quote_identifier(&database)
        ));
    }
    let mut last_error = None;
    for query in &revocations {
        if let Err(e) = client.batch_execute(query).await {
            last_error = Some(e);
        }
    }
    if let Some(e) = last_error {
        return Err(with_context("could not perform all revocation statements")(
            e,
        ));
    }
    client
        .batch_execute(&format!("DROP ROLE IF EXISTS {user};"))
        .await
        .map_err(query_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_errors_read_as_go_multierror_writes_them() {
        assert_eq!(go_multierror(&["a".into()]), "1 error occurred:\n\t* a\n\n");
        assert_eq!(
            go_multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
        );
    }
}
