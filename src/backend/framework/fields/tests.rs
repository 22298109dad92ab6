use super::*;
use serde_json::json;

fn data(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

static SCHEMA: [FieldSchema; 3] = [
    FieldSchema::new("value", FieldType::String, ""),
    FieldSchema::new("version", FieldType::Int, ""),
    FieldSchema::new("flag", FieldType::Bool, ""),
];

/// The converted value of one field of type `kind` given `raw`, or the validation error.
fn one(kind: FieldType, raw: Value) -> Result<Option<Value>, String> {
    let schema = [FieldSchema::new("f", kind, "")];
    let body = data(json!({ "f": raw }));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    fields.validate()?;
    Ok(fields.get_ok("f"))
}

fn error_of(kind: FieldType, raw: Value) -> String {
    match one(kind, raw.clone()) {
        Err(error) => error
            .strip_prefix("error converting input for field \"f\": ")
            .unwrap_or(&error)
            .to_owned(),
        Ok(value) => panic!("{raw} converted to {value:?} as {kind:?}"),
    }
}

#[test]
fn weak_conversions_follow_mapstructure() {
    let body = data(json!({"value": 12.5, "version": "12", "flag": "true"}));
    let (fields, _) = FieldData::new("test", &SCHEMA, &body, vec![]);
    assert!(fields.validate().is_ok());
    assert_eq!(fields.get_string("value"), "12.5");
    assert_eq!(fields.get_int("version"), 12);
    assert_eq!(fields.get_ok("flag"), Some(Value::Bool(true)));
    assert!(fields.get_bool("flag"));

    let body = data(json!({"value": true, "version": 7.9, "flag": 0}));
    let (fields, _) = FieldData::new("test", &SCHEMA, &body, vec![]);
    assert_eq!(fields.get_string("value"), "1");
    assert_eq!(fields.get_int("version"), 7);
    assert_eq!(fields.get_ok("flag"), Some(Value::Bool(false)));
}

#[test]
fn absent_fields_have_zero_values() {
    let empty = Map::new();
    let (fields, _) = FieldData::new("test", &SCHEMA, &empty, vec![]);
    assert_eq!(fields.get_string("value"), "");
    assert_eq!(fields.get_int("version"), 0);
    assert!(!fields.is_present("value"));
    assert_eq!(fields.get_ok("value"), None);
    // A field not in the schema is not absent but a programming error: see
    // `reading_an_undeclared_field_panics_naming_the_field_and_the_pattern`.
}

#[test]
fn unconvertible_values_fail_validation_with_the_field_named() {
    for (body, needle) in [
        (json!({"version": "abc"}), r#"field "version""#),
        (json!({"version": "12abc"}), "invalid syntax"),
        (json!({"version": "99999999999999999999"}), "out of range"),
        (
            json!({"value": {"a": 1}}),
            "'' expected type 'string', got unconvertible type 'map[string]interface {}'",
        ),
        (
            json!({"value": [1, 2]}),
            "unconvertible type '[]interface {}'",
        ),
        (json!({"flag": "maybe"}), "ParseBool"),
    ] {
        let body_data = data(body.clone());
        let (fields, _) = FieldData::new("test", &SCHEMA, &body_data, vec![]);
        let error = fields.validate().expect_err(&body.to_string());
        assert!(error.contains(needle), "{error} lacks {needle}");
    }
}

#[test]
fn go_integer_prefixes_and_signs() {
    assert_eq!(parse_go_int("0x1f"), Ok(31));
    assert_eq!(parse_go_int("-010"), Ok(-8));
    assert_eq!(parse_go_int("0b101"), Ok(5));
    assert_eq!(parse_go_int("1_000"), Ok(1000));
    assert_eq!(parse_go_int(""), Ok(0));
    assert!(parse_go_int("-").is_err());
    assert!(parse_go_int("--1").is_err());
}

#[test]
fn captures_override_the_body_and_are_reported_as_replaced() {
    let key_schema = [FieldSchema::new("key", FieldType::String, "")];
    let body = data(json!({"key": "from-body"}));
    let (fields, replaced) = FieldData::new(
        "test",
        &key_schema,
        &body,
        vec![("key".into(), "from-path".into())],
    );
    assert_eq!(fields.get_string("key"), "from-path");
    assert_eq!(replaced, ["key"]);

    let (_, replaced) = FieldData::new(
        "test",
        &[FieldSchema::new("key", FieldType::String, "")],
        &data(json!({"key": null})),
        vec![("key".into(), "from-path".into())],
    );
    assert!(replaced.is_empty());
}

#[test]
fn lower_case_and_name_strings() {
    assert_eq!(
        one(FieldType::LowerCaseString, json!("MiXed")),
        Ok(Some(json!("mixed")))
    );
    assert_eq!(
        one(FieldType::NameString, json!("a.b-c_d")),
        Ok(Some(json!("a.b-c_d")))
    );
    assert_eq!(one(FieldType::NameString, json!("x")), Ok(Some(json!("x"))));
    for bad in ["", "-a", "a.", "a b", "é"] {
        assert_eq!(
            error_of(FieldType::NameString, json!(bad)),
            "field does not match the formatting rules",
            "{bad:?}"
        );
    }
}

#[test]
fn int64_and_float() {
    assert_eq!(one(FieldType::Int64, json!("0x10")), Ok(Some(json!(16))));
    assert_eq!(
        error_of(FieldType::Int64, json!("x")),
        "'' cannot parse value as 'int64': strconv.ParseInt: invalid syntax"
    );
    assert_eq!(
        one(FieldType::Float, json!("2.5e3")),
        Ok(Some(json!(2500.0)))
    );
    assert_eq!(one(FieldType::Float, json!(true)), Ok(Some(json!(1.0))));
    assert_eq!(one(FieldType::Float, json!("")), Ok(Some(json!(0.0))));
    assert_eq!(
        error_of(FieldType::Float, json!("1,5")),
        "'' cannot parse value as 'float64': strconv.ParseFloat: invalid syntax"
    );
    assert_eq!(
        error_of(FieldType::Float, json!("1e400")),
        "'' cannot parse value as 'float64': strconv.ParseFloat: value out of range"
    );
    assert_eq!(
        error_of(FieldType::Float, json!({})),
        "'' expected type 'float64', got unconvertible type 'map[string]interface {}'"
    );
}

#[test]
fn durations_read_as_whole_seconds() {
    let schema = [
        FieldSchema::new("ttl", FieldType::DurationSecond, ""),
        FieldSchema::new("offset", FieldType::SignedDurationSecond, ""),
    ];
    let body = data(json!({"ttl": "1h30m", "offset": "-90s"}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.validate(), Ok(()));
    assert_eq!(fields.get_duration("ttl"), Duration::from_secs(5400));
    assert_eq!(fields.get_ok("ttl"), Some(json!(5400)));
    assert_eq!(fields.get_signed_duration_seconds("offset"), -90);
    assert_eq!(fields.get_duration("offset"), Duration::ZERO);

    assert_eq!(
        one(FieldType::DurationSecond, json!("7d")),
        Ok(Some(json!(604_800)))
    );
    assert_eq!(
        one(FieldType::DurationSecond, json!(30)),
        Ok(Some(json!(30)))
    );
    assert_eq!(
        one(FieldType::DurationSecond, json!("1500ms")),
        Ok(Some(json!(1)))
    );
    assert_eq!(
        error_of(FieldType::DurationSecond, json!("-5")),
        "cannot provide negative value '-5'"
    );
    assert_eq!(
        error_of(FieldType::DurationSecond, json!("soon")),
        r#"time: invalid duration "soon""#
    );
    assert_eq!(
        error_of(FieldType::DurationSecond, json!([1])),
        "could not parse duration from input"
    );
}

#[test]
fn a_null_duration_or_time_is_absent_but_a_null_string_is_empty() {
    let schema = [
        FieldSchema::new("ttl", FieldType::DurationSecond, "").with_default(json!("1m")),
        FieldSchema::new("name", FieldType::String, "").with_default(json!("dflt")),
        FieldSchema::new("at", FieldType::Time, ""),
    ];
    let body = data(json!({"ttl": null, "name": null, "at": null}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.validate(), Ok(()));
    assert_eq!(fields.get_ok("ttl"), None);
    assert_eq!(fields.get_duration("ttl"), Duration::from_secs(60));
    assert_eq!(fields.get_ok("name"), Some(json!("")));
    assert_eq!(fields.get_string("name"), "");
    assert_eq!(fields.get_time("at"), zero_time());
}

#[test]
fn defaults_are_read_for_absent_fields_and_converted() {
    let schema = [
        FieldSchema::new("ttl", FieldType::DurationSecond, "").with_default(json!("2h")),
        FieldSchema::new("count", FieldType::Int, "").with_default(json!("7")),
        FieldSchema::new("tags", FieldType::CommaStringSlice, "").with_default(json!("a, b")),
        FieldSchema::new("on", FieldType::Bool, "").with_default(json!(true)),
        FieldSchema::new("bad", FieldType::Int, "").with_default(json!({})),
    ];
    let empty = Map::new();
    let (fields, _) = FieldData::new("test", &schema, &empty, vec![]);
    assert_eq!(fields.get_duration("ttl"), Duration::from_secs(7200));
    assert_eq!(fields.get_int("count"), 7);
    assert_eq!(fields.get_string_slice("tags"), ["a", "b"]);
    assert!(fields.get_bool("on"));
    assert_eq!(fields.get_int("bad"), 0);
    // GetOk does not see defaults.
    assert_eq!(fields.get_ok("count"), None);

    let body = data(json!({"count": 3}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.get_int("count"), 3);
}

#[test]
fn maps() {
    assert_eq!(
        one(FieldType::Map, json!({"a": 1})),
        Ok(Some(json!({"a": 1})))
    );
    assert_eq!(one(FieldType::Map, json!([])), Ok(Some(json!({}))));
    assert_eq!(
        one(FieldType::Map, json!([{"a": 1}, {"b": 2, "a": 3}])),
        Ok(Some(json!({"a": 3, "b": 2})))
    );
    assert_eq!(
        error_of(FieldType::Map, json!("a=b")),
        "'' expected type 'map[string]interface {}', got unconvertible type 'string'"
    );
    assert_eq!(
        error_of(FieldType::Map, json!(5)),
        "'' expected type 'map[string]interface {}', got unconvertible type 'float64'"
    );
    assert_eq!(
        error_of(FieldType::Map, json!([{"a": 1}, "x"])),
        "'[1]' expected type 'map[string]interface {}', got unconvertible type 'string'"
    );
    let schema = [FieldSchema::new("m", FieldType::Map, "")];
    let body = data(json!({"m": {"k": "v"}}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.get_map("m"), data(json!({"k": "v"})));
}

#[test]
fn slices() {
    assert_eq!(
        one(FieldType::Slice, json!([1, "a"])),
        Ok(Some(json!([1, "a"])))
    );
    assert_eq!(
        one(FieldType::Slice, json!("a,b")),
        Ok(Some(json!(["a,b"])))
    );
    assert_eq!(one(FieldType::Slice, json!({})), Ok(Some(json!([]))));
    assert_eq!(
        one(FieldType::Slice, json!({"a": 1})),
        Ok(Some(json!([{"a": 1}])))
    );
    assert_eq!(one(FieldType::Slice, json!(null)), Ok(Some(json!([]))));
}

#[test]
fn string_slices_do_not_split_commas() {
    assert_eq!(
        one(FieldType::StringSlice, json!([" a ", 1, true, null])),
        Ok(Some(json!(["a", "1", "1", ""])))
    );
    assert_eq!(
        one(FieldType::StringSlice, json!("a, b")),
        Ok(Some(json!(["a, b"])))
    );
    assert_eq!(one(FieldType::StringSlice, json!("")), Ok(Some(json!([]))));
    assert_eq!(
        one(FieldType::StringSlice, json!(2.5)),
        Ok(Some(json!(["2.5"])))
    );
    assert_eq!(
        error_of(FieldType::StringSlice, json!(["a", {}, [1]])),
        "'[1]' expected type 'string', got unconvertible type 'map[string]interface {}'\n\
         '[2]' expected type 'string', got unconvertible type '[]interface {}'"
    );
    assert_eq!(
        error_of(FieldType::StringSlice, json!({"a": 1})),
        "'[0]' expected type 'string', got unconvertible type 'map[string]interface {}'"
    );
}

#[test]
fn comma_string_slices_split_and_trim_with_mapstructure_v1_errors() {
    assert_eq!(
        one(FieldType::CommaStringSlice, json!("a, b,,c ")),
        Ok(Some(json!(["a", "b", "", "c"])))
    );
    assert_eq!(
        one(FieldType::CommaStringSlice, json!(["a,b", " c"])),
        Ok(Some(json!(["a,b", "c"])))
    );
    assert_eq!(
        one(FieldType::CommaStringSlice, json!("")),
        Ok(Some(json!([])))
    );
    assert_eq!(
        one(FieldType::CommaStringSlice, json!(3)),
        Ok(Some(json!(["3"])))
    );
    assert_eq!(
        error_of(FieldType::CommaStringSlice, json!(["a", {"x": 1.5}])),
        "1 error(s) decoding:\n\n* '[1]' expected type 'string', got unconvertible type \
         'map[string]interface {}', value: 'map[x:1.5]'"
    );
    let schema = [FieldSchema::new("l", FieldType::CommaStringSlice, "")];
    let body = data(json!({"l": "x,y"}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.get_string_slice("l"), ["x", "y"]);
}

#[test]
fn comma_int_slices() {
    assert_eq!(
        one(FieldType::CommaIntSlice, json!("1,0x10,,-2")),
        Ok(Some(json!([1, 16, 0, -2])))
    );
    assert_eq!(
        one(FieldType::CommaIntSlice, json!([1, "2", true, 3.9])),
        Ok(Some(json!([1, 2, 1, 3])))
    );
    assert_eq!(
        one(FieldType::CommaIntSlice, json!(5)),
        Ok(Some(json!([5])))
    );
    assert_eq!(
        one(FieldType::CommaIntSlice, json!("")),
        Ok(Some(json!([])))
    );
    assert_eq!(
        error_of(FieldType::CommaIntSlice, json!("1, 2,x")),
        "'[1]' cannot parse value as 'int': strconv.ParseInt: invalid syntax\n\
         '[2]' cannot parse value as 'int': strconv.ParseInt: invalid syntax"
    );
    let schema = [FieldSchema::new("l", FieldType::CommaIntSlice, "")];
    let body = data(json!({"l": "3,4"}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.get_int_slice("l"), [3, 4]);
}

#[test]
fn kv_pairs_from_objects_or_lists() {
    assert_eq!(
        one(FieldType::KVPairs, json!({"a": 1, "b": true, "c": "x"})),
        Ok(Some(json!({"a": "1", "b": "1", "c": "x"})))
    );
    assert_eq!(
        one(FieldType::KVPairs, json!(["a=b=c", "d="])),
        Ok(Some(json!({"a": "b=c", "d": ""})))
    );
    assert_eq!(
        one(FieldType::KVPairs, json!("k=v")),
        Ok(Some(json!({"k": "v"})))
    );
    assert_eq!(
        error_of(FieldType::KVPairs, json!(["=v"])),
        r#"invalid key pair "=v""#
    );
    assert_eq!(
        error_of(FieldType::KVPairs, json!(["a\"b"])),
        r#"invalid key pair "a\"b""#
    );
    assert_eq!(
        error_of(FieldType::KVPairs, json!({"a": {}})),
        "'[0]' expected type 'string', got unconvertible type 'map[string]interface {}'"
    );
    let schema = [FieldSchema::new("p", FieldType::KVPairs, "")];
    let body = data(json!({"p": ["x=1"]}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(
        fields.get_kv_pairs("p"),
        BTreeMap::from([("x".to_owned(), "1".to_owned())])
    );
}

#[test]
fn headers_from_objects_json_base64_and_cli_pairs() {
    let expected = json!({"Accept": ["a/b", "c/d"], "Content-Type": ["text/json"]});
    assert_eq!(
        one(
            FieldType::Header,
            json!({"content-type": "text/json", "accept": ["a/b", "c/d"]})
        ),
        Ok(Some(expected.clone()))
    );
    let as_json = r#"{"content-type":"text/json","accept":["a/b","c/d"]}"#;
    assert_eq!(
        one(FieldType::Header, json!(as_json)),
        Ok(Some(expected.clone()))
    );
    let as_base64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, as_json);
    assert_eq!(one(FieldType::Header, json!(as_base64)), Ok(Some(expected)));
    assert_eq!(
        one(FieldType::Header, json!(["x-a:1", "X-A:2:3"])),
        Ok(Some(json!({"X-A": ["1", "2:3"]})))
    );
    // Numbers are text inside a JSON string, but float64 straight from the request.
    assert_eq!(
        one(FieldType::Header, json!(r#"{"n": 5}"#)),
        Ok(Some(json!({"N": ["5"]})))
    );
    assert_eq!(
        error_of(FieldType::Header, json!({"n": 5})),
        "unrecognized type for %!s(float64=5)"
    );
    assert_eq!(
        error_of(FieldType::Header, json!({"n": ["a", 5]})),
        "received non-string value for header key:n, val:[a %!s(float64=5)]"
    );
    assert_eq!(
        error_of(FieldType::Header, json!(["novalue"])),
        r#"invalid key pair "novalue""#
    );
    assert_eq!(
        error_of(FieldType::Header, json!([1])),
        r#"invalid key pair """#
    );
    assert_eq!(
        error_of(FieldType::Header, json!("[1]")),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    assert_eq!(canonical_header_key("x-forwarded-FOR"), "X-Forwarded-For");
    assert_eq!(canonical_header_key("bad key"), "bad key");
    let schema = [FieldSchema::new("h", FieldType::Header, "")];
    let body = data(json!({"h": ["a:b"]}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(
        fields.get_header("h"),
        BTreeMap::from([("A".to_owned(), vec!["b".to_owned()])])
    );
}

#[test]
fn times() {
    let schema = [FieldSchema::new("at", FieldType::Time, "")];
    let body = data(json!({"at": "2024-01-02T03:04:05.25-01:00"}));
    let (fields, _) = FieldData::new("test", &schema, &body, vec![]);
    assert_eq!(fields.validate(), Ok(()));
    assert_eq!(fields.get_ok("at"), Some(json!("2024-01-02T04:04:05.25Z")));
    assert_eq!(
        fields.get_time("at"),
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_168_245_250)
    );
    assert_eq!(
        one(FieldType::Time, json!("0")),
        Ok(Some(json!("1970-01-01T00:00:00Z")))
    );
    assert_eq!(
        error_of(FieldType::Time, json!(1.5)),
        "could not parse time from input type"
    );
    assert_eq!(
        error_of(FieldType::Time, json!("yesterday")),
        "could not parse string as date and time"
    );
}

#[test]
fn go_formats_values_as_fmt_does() {
    assert_eq!(
        go_format(&json!({"b": [1, "x"], "a": null})),
        "map[a:<nil> b:[1 x]]"
    );
    assert_eq!(go_float_v(1e21), "1e+21");
    assert_eq!(go_float_v(0.00001), "1e-05");
    assert_eq!(go_float_v(123.5), "123.5");
    assert_eq!(go_quote("a\nb\u{1}"), r#""a\nb\x01""#);
}

#[test]
fn openapi_schemas_follow_go_convert_type() {
    let schema = |kind| FieldSchema::new("f", kind, "").openapi_schema();
    assert_eq!(schema(FieldType::String), json!({"type": "string"}));
    assert_eq!(schema(FieldType::Int), json!({"type": "integer"}));
    assert_eq!(schema(FieldType::Bool), json!({"type": "boolean"}));
    assert_eq!(
        schema(FieldType::DurationSecond),
        json!({"type": "integer", "format": "seconds"})
    );
    assert_eq!(
        schema(FieldType::CommaStringSlice),
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(
        schema(FieldType::NameString),
        json!({"type": "string", "pattern": r"\w([\w-.]*\w)?"})
    );
    assert_eq!(
        schema(FieldType::Time),
        json!({"type": "string", "format": "date-time"})
    );
    assert_eq!(schema(FieldType::Header), json!({"type": "string"}));
    assert_eq!(
        FieldSchema::new("f", FieldType::Bool, "")
            .with_default(json!(false))
            .openapi_schema(),
        json!({"type": "boolean", "default": false})
    );
    assert_eq!(FieldType::KVPairs.go_name(), "keypair");
    assert_eq!(FieldType::SignedDurationSecond.go_name(), "duration (sec)");
}

// ---------------------------------------------------------------------------------------------
// Fields the path does not declare
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(
    expected = "field \"nope\" is not declared: it is not in the fields of the path \
                           \"items/{name}\""
)]
fn reading_an_undeclared_field_panics_naming_the_field_and_the_pattern() {
    // Supplied in the body, still undeclared.
    let body = data(json!({"nope": "x"}));
    let (fields, _) = FieldData::new("items/{name}", &SCHEMA, &body, vec![]);
    fields.get_string("nope");
}

#[test]
fn every_getter_panics_on_an_undeclared_field() {
    type Getter = fn(&FieldData<'_>);
    let getters: [(&str, Getter); 17] = [
        ("get_ok", |f| {
            let _ = f.get_ok("nope");
        }),
        ("is_present", |f| {
            let _ = f.is_present("nope");
        }),
        ("get_string", |f| {
            let _ = f.get_string("nope");
        }),
        ("get_int", |f| {
            let _ = f.get_int("nope");
        }),
        ("get_int64", |f| {
            let _ = f.get_int64("nope");
        }),
        ("get_bool", |f| {
            let _ = f.get_bool("nope");
        }),
        ("get_float", |f| {
            let _ = f.get_float("nope");
        }),
        ("get_signed_duration_seconds", |f| {
            let _ = f.get_signed_duration_seconds("nope");
        }),
        ("get_duration", |f| {
            let _ = f.get_duration("nope");
        }),
        ("get_string_slice", |f| {
            let _ = f.get_string_slice("nope");
        }),
        ("get_int_slice", |f| {
            let _ = f.get_int_slice("nope");
        }),
        ("get_slice", |f| {
            let _ = f.get_slice("nope");
        }),
        ("get_map", |f| {
            let _ = f.get_map("nope");
        }),
        ("get_kv_pairs", |f| {
            let _ = f.get_kv_pairs("nope");
        }),
        ("get_header", |f| {
            let _ = f.get_header("nope");
        }),
        ("get_time", |f| {
            let _ = f.get_time("nope");
        }),
        ("get_ok (declared)", |f| {
            let _ = f.get_ok("value");
        }),
    ];
    let body = data(json!({"nope": 1}));
    let (fields, _) = FieldData::new("p", &SCHEMA, &body, vec![]);
    for (name, getter) in getters {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| getter(&fields)));
        assert_eq!(outcome.is_err(), name != "get_ok (declared)", "{name}");
    }
}

#[test]
#[should_panic(
    expected = "field \"user\" is not declared: it is not in the fields of the secret \
                           type \"token\""
)]
fn a_secret_types_handler_reading_an_undeclared_field_panics_naming_the_type() {
    let body = data(json!({}));
    FieldData::for_secret_type("token", &[], &body).get_string("user");
}
