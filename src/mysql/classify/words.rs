//! Word lists: builtin function names, the reserved words that may precede `(`
//! without being a call, and case-insensitive lookups that do not allocate.

use std::cmp::Ordering;

use super::Flags;

/// Longest builtin name (`json_schema_validation_report`) fits; longer words are
/// never builtins.
const MAX_NAME: usize = 40;

/// Builtin functions of MariaDB 11.x and MySQL 8.x, lowercase, sorted (a test checks).
///
/// A call of a name listed here is not a stored function. Both servers resolve an
/// unqualified call of a builtin name to the builtin, so a user function of the same
/// name can only be reached qualified (`db.f()`), which the scanner treats as a
/// stored-function call. The residual risk: a name that is builtin in only one of
/// the two servers (e.g. `uuid_to_bin` is MySQL-only) and is a user function with
/// side effects on the other.
#[rustfmt::skip]
const BUILTINS: &[&str] = &[
    "abs", "acos", "add_months", "adddate", "addtime", "aes_decrypt", "aes_encrypt", "any_value",
    "area", "asbinary", "ascii", "asin", "astext", "aswkb", "aswkt", "atan", "atan2", "avg",
    "benchmark", "bin", "bin_to_uuid", "binlog_gtid_pos", "bit_and", "bit_count", "bit_length",
    "bit_or", "bit_xor", "boundary", "buffer", "cast", "ceil", "ceiling", "centroid", "char",
    "char_length", "character_length", "charset", "chr", "coalesce", "coercibility", "collation",
    "column_add", "column_check", "column_create", "column_delete", "column_exists", "column_get",
    "column_json", "column_list", "compress", "concat", "concat_ws", "connection_id", "contains",
    "conv", "convert", "convert_tz", "convexhull", "cos", "cot", "count", "crc32", "crc32c",
    "crosses", "cume_dist", "curdate", "current_date", "current_role", "current_time",
    "current_timestamp", "current_user", "curtime", "database", "date", "date_add", "date_format",
    "date_sub", "datediff", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "decode",
    "decode_histogram", "default", "degrees", "dense_rank", "des_decrypt", "des_encrypt",
    "dimension", "disjoint", "elt", "encode", "encrypt", "endpoint", "envelope", "equals", "exp",
    "export_set", "exteriorring", "extract", "extractvalue", "field", "find_in_set",
    "first_value", "floor", "format", "format_bytes", "format_pico_time", "found_rows",
    "from_base64", "from_days", "from_unixtime", "geomcollfromtext", "geomcollfromwkb",
    "geometrycollection", "geometrycollectionfromtext", "geometrycollectionfromwkb",
    "geometryfromtext", "geometryfromwkb", "geometryn", "geometrytype", "geomfromtext",
    "geomfromwkb", "get_format", "get_lock", "glength", "greatest", "group_concat", "grouping",
    "gtid_subset", "gtid_subtract", "hex", "hour", "icu_version", "if", "ifnull", "inet6_aton",
    "inet6_ntoa", "inet_aton", "inet_ntoa", "insert", "instr", "interiorringn", "intersects",
    "interval", "is_free_lock", "is_ipv4", "is_ipv4_compat", "is_ipv4_mapped", "is_ipv6",
    "is_used_lock", "is_uuid", "isclosed", "isempty", "isnull", "isring", "issimple",
    "json_array", "json_array_append", "json_array_insert", "json_array_intersect",
    "json_arrayagg", "json_compact", "json_contains", "json_contains_path", "json_depth",
    "json_detailed", "json_equals", "json_exists", "json_extract", "json_insert",
    "json_key_value", "json_keys", "json_length", "json_loose", "json_merge", "json_merge_patch",
    "json_merge_preserve", "json_normalize", "json_object", "json_object_filter_keys",
    "json_object_to_array", "json_objectagg", "json_overlaps", "json_pretty", "json_query",
    "json_quote", "json_remove", "json_replace", "json_schema_valid",
    "json_schema_validation_report", "json_search", "json_set", "json_storage_free",
    "json_storage_size", "json_table", "json_type", "json_unquote", "json_valid", "json_value",
    "kdf", "lag", "last_day", "last_insert_id", "last_value", "lastval", "lcase", "lead", "least",
    "left", "length", "linefromtext", "linefromwkb", "linestring", "linestringfromtext",
    "linestringfromwkb", "ln", "load_file", "localtime", "localtimestamp", "locate", "log",
    "log10", "log2", "lower", "lpad", "ltrim", "make_set", "makedate", "maketime",
    "master_gtid_wait", "master_pos_wait", "match", "max", "mbrcontains", "mbrcoveredby",
    "mbrcovers", "mbrdisjoint", "mbrequal", "mbrequals", "mbrintersects", "mbroverlaps",
    "mbrtouches", "mbrwithin", "md5", "median", "microsecond", "mid", "min", "minute",
    "mlinefromtext", "mlinefromwkb", "mod", "month", "monthname", "mpointfromtext",
    "mpointfromwkb", "mpolyfromtext", "mpolyfromwkb", "multilinestring",
    "multilinestringfromtext", "multilinestringfromwkb", "multipoint", "multipointfromtext",
    "multipointfromwkb", "multipolygon", "multipolygonfromtext", "multipolygonfromwkb",
    "name_const", "natural_sort_key", "nextval", "now", "nth_value", "ntile", "nullif",
    "numgeometries", "numinteriorrings", "numpoints", "nvl", "nvl2", "oct", "octet_length",
    "old_password", "ord", "overlaps", "password", "percent_rank", "percentile_cont",
    "percentile_disc", "period_add", "period_diff", "pi", "point", "pointfromtext",
    "pointfromwkb", "pointn", "pointonsurface", "polyfromtext", "polyfromwkb", "polygon",
    "polygonfromtext", "polygonfromwkb", "position", "pow", "power", "ps_current_thread_id",
    "ps_thread_id", "quarter", "quote", "radians", "rand", "random_bytes", "rank", "regexp_instr",
    "regexp_like", "regexp_replace", "regexp_substr", "release_all_locks", "release_lock",
    "repeat", "replace", "reverse", "right", "roles_graphml", "round", "row", "row_count",
    "row_number", "rpad", "rtrim", "schema", "sec_to_time", "second", "session_user", "setval",
    "sformat", "sha", "sha1", "sha2", "sign", "sin", "sleep", "soundex", "source_pos_wait",
    "space", "sql_thread_wait_after_gtids", "sqrt", "srid", "st_area", "st_asbinary",
    "st_asgeojson", "st_astext", "st_aswkb", "st_aswkt", "st_boundary", "st_buffer",
    "st_centroid", "st_collect", "st_contains", "st_convexhull", "st_crosses", "st_difference",
    "st_dimension", "st_disjoint", "st_distance", "st_distance_sphere", "st_endpoint",
    "st_envelope", "st_equals", "st_exteriorring", "st_geohash", "st_geomcollfromtext",
    "st_geomcollfromwkb", "st_geometrycollectionfromtext", "st_geometrycollectionfromwkb",
    "st_geometryfromtext", "st_geometryfromwkb", "st_geometryn", "st_geometrytype",
    "st_geomfromgeojson", "st_geomfromtext", "st_geomfromwkb", "st_interiorringn",
    "st_intersection", "st_intersects", "st_isclosed", "st_isempty", "st_isring", "st_issimple",
    "st_isvalid", "st_latfromgeohash", "st_latitude", "st_length", "st_linefromtext",
    "st_linefromwkb", "st_linestringfromtext", "st_linestringfromwkb", "st_longfromgeohash",
    "st_longitude", "st_makeenvelope", "st_mlinefromtext", "st_mlinefromwkb", "st_mpointfromtext",
    "st_mpointfromwkb", "st_mpolyfromtext", "st_mpolyfromwkb", "st_multilinestringfromtext",
    "st_multilinestringfromwkb", "st_multipointfromtext", "st_multipointfromwkb",
    "st_multipolygonfromtext", "st_multipolygonfromwkb", "st_numgeometries", "st_numinteriorring",
    "st_numinteriorrings", "st_numpoints", "st_overlaps", "st_pointfromgeohash",
    "st_pointfromtext", "st_pointfromwkb", "st_pointn", "st_pointonsurface", "st_polyfromtext",
    "st_polyfromwkb", "st_polygonfromtext", "st_polygonfromwkb", "st_relate", "st_simplify",
    "st_srid", "st_startpoint", "st_swapxy", "st_symdifference", "st_touches", "st_transform",
    "st_union", "st_validate", "st_within", "st_x", "st_y", "startpoint", "statement_digest",
    "statement_digest_text", "std", "stddev", "stddev_pop", "stddev_samp", "str_to_date",
    "strcmp", "subdate", "substr", "substring", "substring_index", "subtime", "sum", "sys_guid",
    "sysdate", "system_user", "tan", "time", "time_format", "time_to_sec", "timediff",
    "timestamp", "timestampadd", "timestampdiff", "to_base64", "to_char", "to_days", "to_seconds",
    "touches", "trim", "truncate", "ucase", "uncompress", "uncompressed_length", "unhex",
    "unix_timestamp", "updatexml", "upper", "user", "utc_date", "utc_time", "utc_timestamp",
    "uuid", "uuid_short", "uuid_to_bin", "uuid_v4", "uuid_v7", "validate_password_strength",
    "values", "var_pop", "var_samp", "variance", "vec_distance", "vec_distance_cosine",
    "vec_distance_euclidean", "vec_fromtext", "vec_totext", "version",
    "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids", "week", "weekday",
    "weekofyear", "weight_string", "within", "wsrep_last_seen_gtid", "wsrep_last_written_gtid",
    "wsrep_sync_wait_upto_gtid", "x", "y", "year", "yearweek",
];

/// Reserved words that may be followed by `(` without being a function call
/// (`IN (`, `EXISTS (`, `AS (`, `USING (`, `VARCHAR(10)` in `JSON_TABLE` ...).
/// Only reserved words: a non-reserved word could name a user function.
#[rustfmt::skip]
const NOT_CALLS: &[&str] = &[
    "all", "and", "as", "between", "bigint", "binary", "by", "case", "cross", "dec", "decimal",
    "desc", "distinct", "distinctrow", "div", "double", "else", "elseif", "except", "exists",
    "float", "for", "from", "group", "having", "in", "index", "inner", "int", "integer",
    "intersect", "into", "is", "join", "key", "lateral", "like", "mediumint", "natural", "not",
    "numeric", "on", "or", "order", "outer", "partition", "real", "regexp", "return", "rlike",
    "select", "smallint", "straight_join", "then", "tinyint", "union", "using", "varbinary",
    "varchar", "when", "where", "with", "xor",
];

/// `lower` (already lowercase) is in the sorted `list`.
fn in_sorted(list: &[&str], lower: &[u8]) -> bool {
    list.binary_search_by(|probe| cmp_short(probe.as_bytes(), lower))
        .is_ok()
}

/// Byte order, inline: for names this short a `memcmp` call costs more than it saves.
fn cmp_short(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// What a name followed by `(` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    /// A reserved word such as `IN` or `EXISTS`: no call.
    Keyword,
    /// A builtin function, with what calling it implies.
    Builtin(Flags),
    /// Anything else: a stored function or a loadable (UDF) one.
    Other,
}

/// Classifies the unqualified, unquoted name `word` in `word (`.
pub fn callee(word: &[u8]) -> Callee {
    let mut buf = [0u8; MAX_NAME];
    let Some(lower) = lowercase(word, &mut buf) else {
        return Callee::Other;
    };
    if in_sorted(NOT_CALLS, lower) {
        Callee::Keyword
    } else if in_sorted(BUILTINS, lower) {
        Callee::Builtin(special(lower))
    } else {
        Callee::Other
    }
}

/// What calling the builtin `lower` implies for routing; `Flags::NONE` for the
/// harmless majority (including `SLEEP`, `UUID`, `RAND`, `NOW`, `BENCHMARK`).
fn special(lower: &[u8]) -> Flags {
    match lower {
        b"get_lock" | b"release_lock" | b"release_all_locks" | b"is_free_lock"
        | b"is_used_lock" => Flags::LOCK_FUNCTION | Flags::SIDE_EFFECT,
        b"nextval" | b"setval" | b"lastval" => Flags::SIDE_EFFECT,
        b"last_insert_id" => Flags::LAST_INSERT_ID,
        b"found_rows" => Flags::FOUND_ROWS,
        b"row_count" => Flags::ROW_COUNT,
        // The answer is about the server that runs the wait (see the module docs).
        b"master_pos_wait"
        | b"master_gtid_wait"
        | b"source_pos_wait"
        | b"wait_for_executed_gtid_set"
        | b"wait_until_sql_thread_after_gtids"
        | b"sql_thread_wait_after_gtids"
        | b"wsrep_sync_wait_upto_gtid" => Flags::REPLICATION_WAIT,
        // Values that differ per server: its files, its threads, its binlog.
        b"load_file"
        | b"connection_id"
        | b"binlog_gtid_pos"
        | b"wsrep_last_seen_gtid"
        | b"wsrep_last_written_gtid"
        | b"ps_current_thread_id"
        | b"ps_thread_id" => Flags::SERVER_STATE,
        _ => Flags::NONE,
    }
}

/// What reading the system variable `name` (scope already removed) implies.
pub fn sysvar_flags(name: &[u8]) -> Flags {
    let mut buf = [0u8; MAX_NAME];
    let Some(lower) = lowercase(name, &mut buf) else {
        return Flags::NONE;
    };
    match lower {
        b"identity" | b"last_insert_id" | b"insert_id" => Flags::LAST_INSERT_ID,
        b"warning_count" | b"error_count" => Flags::DIAGNOSTICS_AREA,
        // Differ per server, or (last_gtid) per server session: an application that
        // checks `@@read_only` to find the writable server must see the primary's.
        // (`@@server_id`, `@@port`, `@@hostname` are not here: they name the server
        // that answered, which is true wherever the read runs, and are how an
        // operator sees which backend served a read.)
        b"read_only" | b"super_read_only" | b"innodb_read_only" | b"last_gtid"
        | b"gtid_binlog_pos" | b"gtid_binlog_state" | b"gtid_current_pos" | b"gtid_slave_pos"
        | b"gtid_executed" | b"gtid_purged" | b"log_bin" | b"pseudo_thread_id" => {
            Flags::SERVER_STATE
        }
        _ => Flags::NONE,
    }
}

/// `word` lowercased into `buf`, or `None` if it is longer than `buf`.
pub fn lowercase<'b>(word: &[u8], buf: &'b mut [u8; MAX_NAME]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..word.len())?;
    for (o, b) in out.iter_mut().zip(word) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_unique_lowercase_and_short() {
        for list in [BUILTINS, NOT_CALLS] {
            for w in list.windows(2) {
                assert!(w[0] < w[1], "{} before {}", w[0], w[1]);
            }
            for w in list {
                assert!(
                    w.len() <= MAX_NAME && w.bytes().all(|b| !b.is_ascii_uppercase()),
                    "{w}"
                );
            }
        }
    }

    #[test]
    fn lookups_ignore_case() {
        let builtin = |w: &[u8]| matches!(callee(w), Callee::Builtin(_));
        assert!(builtin(b"NOW") && builtin(b"Json_Extract") && builtin(b"abs"));
        assert!(builtin(b"yearweek") && builtin(b"y"));
        assert_eq!(callee(b"my_func"), Callee::Other);
        assert_eq!(callee(b"sys_exec"), Callee::Other);
        assert_eq!(callee(&[b'a'; 100]), Callee::Other);
        assert_eq!(callee(b"IN"), Callee::Keyword);
        assert_eq!(callee(b"Exists"), Callee::Keyword);
        assert_eq!(callee(b"path"), Callee::Other);
        let lock = Flags::LOCK_FUNCTION | Flags::SIDE_EFFECT;
        assert_eq!(callee(b"GET_LOCK"), Callee::Builtin(lock));
        assert_eq!(callee(b"sleep"), Callee::Builtin(Flags::NONE));
        assert_eq!(sysvar_flags(b"IDENTITY"), Flags::LAST_INSERT_ID);
        assert_eq!(sysvar_flags(&[b'a'; 100]), Flags::NONE);
    }

    #[test]
    fn every_special_function_is_a_builtin() {
        for name in [
            "get_lock",
            "nextval",
            "master_gtid_wait",
            "load_file",
            "row_count",
        ] {
            assert!(
                matches!(callee(name.as_bytes()), Callee::Builtin(_)),
                "{name}"
            );
        }
    }
}
