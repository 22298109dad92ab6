// Package helpers drives a database plugin binary through OpenBao's published
// Go test helpers for database plugins (package dbtesting of
// github.com/openbao/openbao/sdk/v2, MPL-2.0), as a Go client that launches it
// over go-plugin: once offering protocol 5 only (one instance per process) and
// once offering 5 and 6 (multiplexed, every call carrying a multiplex_id).
//
// The binary and the PostgreSQL server come from the environment, which the
// Rust wrapper examples/postgresql/tests/go_helpers.rs sets:
//
//	PLUGIN_BINARY      the plugin binary to launch
//	PG_CONNECTION_URL  a connection_url with {{username}} and {{password}}
//	PG_USERNAME        a superuser's name
//	PG_PASSWORD        its password
//	REQUIRE_HARNESS=1  fail, not skip, when any of the above is unset
//
// The test prints what it left in PostgreSQL, one line each, for the wrapper
// to check there: "CREATED <name>" for every user it created, "DELETED <name>"
// for those it deleted afterwards and "KEPT <name> <password> <valid until,
// RFC 3339 UTC>" for those it left, with their last password and expiration.
package helpers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/openbao/openbao/sdk/v2/database/dbplugin/v5"
	dbtesting "github.com/openbao/openbao/sdk/v2/database/dbplugin/v5/testing"
	"github.com/openbao/openbao/sdk/v2/logical"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// The creation statement of the PostgreSQL plugin's documentation.
const creationStatement = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`

// callTimeout bounds the calls made here without a dbtesting helper (the
// helpers have their own timeout, BAO_TEST_DATABASE_REQUEST_TIMEOUT, 10 s).
const callTimeout = 10 * time.Second

type harness struct {
	binary   string
	url      string
	username string
	password string
}

// harnessFromEnv reads the environment the Rust wrapper sets. Outside it the
// test skips, unless REQUIRE_HARNESS=1, so that a run meant to test something
// never passes without testing it.
func harnessFromEnv(t *testing.T) harness {
	t.Helper()
	h := harness{
		binary:   os.Getenv("PLUGIN_BINARY"),
		url:      os.Getenv("PG_CONNECTION_URL"),
		username: os.Getenv("PG_USERNAME"),
		password: os.Getenv("PG_PASSWORD"),
	}
	var missing []string
	for _, v := range []struct{ name, value string }{
		{"PLUGIN_BINARY", h.binary},
		{"PG_CONNECTION_URL", h.url},
		{"PG_USERNAME", h.username},
		{"PG_PASSWORD", h.password},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s unset: this test runs under the Rust wrapper "+
			"(cargo test -p postgresql-database-plugin --test go_helpers), which "+
			"starts PostgreSQL and names the plugin binary", strings.Join(missing, ", "))
		if os.Getenv("REQUIRE_HARNESS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(h.binary); err != nil {
		t.Fatalf("PLUGIN_BINARY: %s", err)
	}
	return h
}

func (h harness) config() map[string]any {
	return map[string]any{
		"connection_url": h.url,
		"username":       h.username,
		"password":       h.password,
	}
}

// muxID is the multiplex_id a protocol-6 client sends with every call; empty
// sends none.
type muxID struct {
	mu sync.Mutex
	id string
}

func (m *muxID) set(id string) {
	m.mu.Lock()
	m.id = id
	m.mu.Unlock()
}

func (m *muxID) interceptor(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption,
) error {
	m.mu.Lock()
	id := m.id
	m.mu.Unlock()
	if id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "multiplex_id", id)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// launch starts the binary as go-plugin does for OpenBao's database engine
// (gRPC, automatic mutual TLS) and dispenses its Database. mux nil offers
// protocol 5 only; otherwise 5 and 6, with mux's id on every call. The plugin
// is killed when the test ends.
func launch(t *testing.T, h harness, mux *muxID) (dbplugin.Database, *plugin.Client) {
	t.Helper()
	config := &plugin.ClientConfig{
		HandshakeConfig:  dbplugin.HandshakeConfig,
		Cmd:              exec.Command(h.binary),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "plugin",
			Output: os.Stderr,
			Level:  hclog.Info,
		}),
	}
	if mux == nil {
		config.VersionedPlugins = map[int]plugin.PluginSet{
			5: {"database": &dbplugin.GRPCDatabasePlugin{}},
		}
	} else {
		config.VersionedPlugins = dbplugin.PluginSets
		config.GRPCDialOptions = []grpc.DialOption{grpc.WithUnaryInterceptor(mux.interceptor)}
	}
	client := plugin.NewClient(config)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("launching %s: %s", h.binary, err)
	}
	raw, err := rpc.Dispense("database")
	if err != nil {
		t.Fatalf("dispensing \"database\": %s", err)
	}
	db, ok := raw.(dbplugin.Database)
	if !ok {
		t.Fatalf("the dispensed plugin is a %T, not a dbplugin.Database", raw)
	}
	return db, client
}

func assertType(t *testing.T, db dbplugin.Database) {
	t.Helper()
	typ, err := db.Type()
	if err != nil {
		t.Fatalf("Type: %s", err)
	}
	if typ != "pgx" {
		t.Fatalf("Type = %q, want \"pgx\"", typ)
	}
}

// assertInitialize initializes with verify_connection and checks that the
// response's config is the request's (the PostgreSQL plugin adds nothing).
func assertInitialize(t *testing.T, h harness, db dbplugin.Database) {
	t.Helper()
	req := dbplugin.InitializeRequest{Config: h.config(), VerifyConnection: true}
	resp := dbtesting.AssertInitialize(t, db, req)
	if !reflect.DeepEqual(resp.Config, req.Config) {
		t.Fatalf("Initialize's config = %#v, want the request's %#v", resp.Config, req.Config)
	}
}

// newUser creates a user with the documented creation statement and checks
// the name the default username template gives it.
func newUser(t *testing.T, db dbplugin.Database, role, password string, expiration time.Time) string {
	t.Helper()
	resp := dbtesting.AssertNewUser(t, db, dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: role},
		Statements:     dbplugin.Statements{Commands: []string{creationStatement}},
		Password:       password,
		Expiration:     expiration,
	})
	fmt.Printf("CREATED %s\n", resp.Username)
	if !strings.HasPrefix(resp.Username, "v-token-"+role+"-") {
		t.Fatalf("username %q does not start with \"v-token-%s-\" (the default template)",
			resp.Username, role)
	}
	if len(resp.Username) > 63 {
		t.Fatalf("username %q is longer than PostgreSQL's 63 bytes", resp.Username)
	}
	return resp.Username
}

func deleteUser(t *testing.T, db dbplugin.Database, username string) {
	t.Helper()
	dbtesting.AssertDeleteUser(t, db, dbplugin.DeleteUserRequest{Username: username})
	fmt.Printf("DELETED %s\n", username)
}

// lifecycle runs the dbtesting helpers in the order the database engine
// calls them: Initialize, NewUser, UpdateUser (password, then expiration, then
// both), a second NewUser and its DeleteUser. It leaves the first user (KEPT)
// and the instance open.
func lifecycle(t *testing.T, h harness, db dbplugin.Database, tag string) {
	t.Helper()
	assertInitialize(t, h, db)

	// Whole seconds: PostgreSQL's VALID UNTIL and the line printed compare
	// equal then.
	now := time.Now().UTC().Truncate(time.Second)
	kept := newUser(t, db, tag+"kept", "Initial-Passw0rd-"+tag, now.Add(time.Hour))

	password := "Updated-Passw0rd-" + tag
	dbtesting.AssertUpdateUser(t, db, dbplugin.UpdateUserRequest{
		Username: kept,
		Password: &dbplugin.ChangePassword{NewPassword: password},
	})
	expiration := now.Add(2 * time.Hour)
	dbtesting.AssertUpdateUser(t, db, dbplugin.UpdateUserRequest{
		Username:   kept,
		Expiration: &dbplugin.ChangeExpiration{NewExpiration: expiration},
	})
	password = "Final-Passw0rd-" + tag
	expiration = now.Add(3 * time.Hour)
	dbtesting.AssertUpdateUser(t, db, dbplugin.UpdateUserRequest{
		Username:   kept,
		Password:   &dbplugin.ChangePassword{NewPassword: password},
		Expiration: &dbplugin.ChangeExpiration{NewExpiration: expiration},
	})

	gone := newUser(t, db, tag+"gone", "Doomed-Passw0rd-"+tag, now.Add(time.Hour))
	deleteUser(t, db, gone)
	// Deleting a user that is no longer there succeeds (the engine retries
	// revocations).
	deleteUser(t, db, gone)

	fmt.Printf("KEPT %s %s %s\n", kept, password, expiration.Format(time.RFC3339))
}

func assertErrorContains(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want an error containing %q", what, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q does not contain %q", what, err, want)
	}
}

// Protocol 5: one instance per process, no multiplex_id.
func TestProtocol5(t *testing.T) {
	h := harnessFromEnv(t)
	db, client := launch(t, h, nil)
	if v := client.NegotiatedVersion(); v != 5 {
		t.Fatalf("negotiated protocol %d, want 5 (the only one offered)", v)
	}
	assertType(t, db)
	if versioner, ok := db.(logical.PluginVersioner); !ok {
		t.Errorf("the client is not a logical.PluginVersioner")
	} else if v := versioner.PluginVersion().Version; v != "" {
		t.Errorf("plugin version %q, want none (the Go plugin reports none)", v)
	}
	lifecycle(t, h, db, "five")
	dbtesting.AssertClose(t, db)
}

// Protocol 6: several instances in one process, told apart by multiplex_id.
func TestProtocol6(t *testing.T) {
	h := harnessFromEnv(t)
	mux := &muxID{id: "instance-a"}
	db, client := launch(t, h, mux)
	if v := client.NegotiatedVersion(); v != 6 {
		t.Fatalf("negotiated protocol %d, want 6 (5 and 6 offered)", v)
	}
	assertType(t, db)
	lifecycle(t, h, db, "six")

	// A second instance: unknown until initialized.
	mux.set("instance-b")
	_, err := db.NewUser(context.Background(), dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token", RoleName: "none"},
		Statements:     dbplugin.Statements{Commands: []string{creationStatement}},
		Password:       "Never-Used-Passw0rd",
		Expiration:     time.Now().Add(time.Hour),
	})
	assertErrorContains(t, "NewUser on an instance never initialized", err, "no database instance found")
	assertInitialize(t, h, db)
	other := newUser(t, db, "sixb", "Other-Passw0rd", time.Now().Add(time.Hour))
	deleteUser(t, db, other)
	dbtesting.AssertClose(t, db)

	// Instance a is untouched by b's Close; closing it forgets it.
	mux.set("instance-a")
	deleteUser(t, db, newUser(t, db, "sixa", "Another-Passw0rd", time.Now().Add(time.Hour)))
	dbtesting.AssertClose(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err = db.DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: other})
	assertErrorContains(t, "DeleteUser on a closed instance", err, "no database instance found")

	// Without a multiplex_id every call fails.
	mux.set("")
	_, err = db.Type()
	assertErrorContains(t, "Type without a multiplex_id", err, "no multiplexing ID found")
}

// Initialize with an empty connection_url fails, and says why.
func TestInitializeEmptyConnectionURL(t *testing.T) {
	h := harnessFromEnv(t)
	db, _ := launch(t, h, nil)
	config := h.config()
	config["connection_url"] = ""
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := db.Initialize(ctx, dbplugin.InitializeRequest{Config: config, VerifyConnection: true})
	assertErrorContains(t, "Initialize with an empty connection_url", err, "connection_url cannot be empty")
	dbtesting.AssertClose(t, db)
}
