// D1's SQL rules as workerd sets them, in one place for lint, the replay and the loopback D1.
// Sources: cloudflare/workerd src/workerd/util/sqlite.c++ (SqliteDatabase::setupSecurity(),
// isAuthorized(), ALLOWED_SQLITE_FUNCTIONS, ALLOWED_PRAGMAS) and src/workerd/api/sql.c++
// (SqlStorageRegulator), read at workerd commit 6552d999 (2026-08).
import {
	identifierName,
	isWord,
	isWordIn,
	type SqlStatement,
	type SqlToken,
	splitStatements,
	utf8ByteLength,
} from "./sql.ts";

/** workerd util/sqlite.c++ setupSecurity(): every sqlite3_limit() D1 sets. */
export const D1_SQLITE_LIMITS = {
	length: 4 * 1024 * 1024,
	sqlLength: 100_000,
	column: 100,
	exprDepth: 100,
	compoundSelect: 5,
	vdbeOp: 25_000,
	functionArg: 127,
	attached: 0,
	likePatternLength: 50,
	variableNumber: 100,
	triggerDepth: 10,
} as const;

/** workerd util/sqlite.c++ ALLOWED_SQLITE_FUNCTIONS: SQLITE_FUNCTION is denied for any other name. */
export const D1_ALLOWED_FUNCTIONS: ReadonlySet<string> = new Set(
	`abs changes char coalesce concat concat_ws format glob hex ifnull iif instr last_insert_rowid
	length like likelihood likely load_extension lower ltrim max_scalar min_scalar nullif
	octet_length printf quote random randomblob replace round rtrim sign soundex substr substring
	total_changes trim typeof unhex unicode unlikely upper zeroblob date time datetime julianday
	unixepoch strftime timediff current_date current_time current_timestamp avg count group_concat
	max min string_agg sum total row_number rank dense_rank percent_rank cume_dist ntile lag lead
	first_value last_value nth_value acos acosh asin asinh atan atan2 atanh ceil cos cosh degrees
	exp floor ln log log2 mod pi pow radians sin sinh sqrt tan tanh trunc json jsonb json_array
	jsonb_array json_array_length json_extract jsonb_extract -> ->> json_insert jsonb_insert
	json_object jsonb_object json_patch jsonb_patch json_remove jsonb_remove json_replace
	jsonb_replace json_set jsonb_set json_type json_valid json_quote json_group_array
	jsonb_group_array json_group_object jsonb_group_object json_each json_tree match highlight
	bm25 snippet rtreecheck sqlite_rename_column sqlite_rename_table sqlite_rename_test
	sqlite_drop_column sqlite_rename_quotefix`.split(/\s+/),
);

/**
 * On the allow-list, but not in workerd's SQLite: its build (workerd build/BUILD.sqlite3,
 * SQLITE_DEFINES) sets no SQLITE_SOUNDEX, which better-sqlite3's does, so D1 fails the statement
 * with "no such function" where the replay's SQLite would run it.
 */
export const D1_MISSING_FUNCTIONS: ReadonlySet<string> = new Set(["soundex"]);

/**
 * SQLite 3.54.1's own functions (`PRAGMA function_list` of better-sqlite3 13.2) that are not on
 * workerd's allow-list, so D1 refuses a statement naming one ("not authorized"); aliases such as
 * `power` and `ceiling` are separate names there.
 */
export const D1_REFUSED_FUNCTIONS: ReadonlySet<string> = new Set(
	`ceiling if json_array_insert jsonb_array_insert json_error_position json_pretty log10 median
	percentile percentile_cont percentile_disc power sqlite_compileoption_get
	sqlite_compileoption_used sqlite_log sqlite_offset sqlite_source_id sqlite_version subtype
	unistr unistr_quote fts3_tokenizer fts5 fts5_get_locale fts5_insttoken fts5_locale
	fts5_source_id geopoly_area geopoly_bbox geopoly_blob geopoly_ccw geopoly_contains_point
	geopoly_debug geopoly_group_bbox geopoly_json geopoly_overlap geopoly_regular geopoly_svg
	geopoly_within geopoly_xform matchinfo offsets optimize rtreedepth rtreenode`.split(/\s+/),
);

export type D1PragmaSignature =
	| "any"
	| "no-arg"
	| "boolean"
	| "object-name"
	| "optional-object-name"
	| "null-or-number"
	| "null-number-or-object-name";

/**
 * workerd util/sqlite.c++ ALLOWED_PRAGMAS plus the table_list / table_info / table_xinfo cases of
 * isAuthorized(). SQLite hands the authorizer its canonical lower-case name, so `PRAGMA
 * Foreign_Keys` passes (checked on workerd through Miniflare).
 */
export const D1_PRAGMAS: ReadonlyMap<string, D1PragmaSignature> = new Map([
	["table_list", "any"],
	["table_info", "object-name"],
	["table_xinfo", "object-name"],
	["data_version", "no-arg"],
	["page_size", "no-arg"],
	["case_sensitive_like", "boolean"],
	["foreign_keys", "boolean"],
	["defer_foreign_keys", "boolean"],
	["ignore_check_constraints", "boolean"],
	["legacy_alter_table", "boolean"],
	["recursive_triggers", "boolean"],
	["reverse_unordered_selects", "boolean"],
	["foreign_key_check", "optional-object-name"],
	["foreign_key_list", "object-name"],
	["index_info", "object-name"],
	["index_list", "object-name"],
	["index_xinfo", "object-name"],
	["quick_check", "null-number-or-object-name"],
	["optimize", "null-or-number"],
]);

/** workerd util/sqlite.c++ isAuthorized() SQLITE_CREATE_VTABLE: compared with strcasecmp. */
export const D1_VIRTUAL_TABLE_MODULES: readonly string[] = [
	"fts5",
	"fts5vocab",
	"rtree",
	"rtree_i32",
];

/** workerd api/sql.c++ SqlStorageRegulator::isAllowedName(): strncasecmp(name, "_cf_", 4). */
export const isD1AllowedName = (name: string): boolean => !/^_cf_/i.test(name);

export const isD1VirtualTableModule = (module: string): boolean =>
	D1_VIRTUAL_TABLE_MODULES.includes(module.toLowerCase());

// workerd util/sqlite.c++ BOOLEAN: strncasecmp prefixes, so "onion" passes as "on" does.
const BOOLEAN_PREFIX = /^(true|false|yes|no|on|off|1|0)/i;

/**
 * workerd util/sqlite.c++ isAuthorized() SQLITE_PRAGMA. `schema` is the name before the dot
 * (only "main" passes; "temp" allows no pragma); `value` is SQLite's zRight: the argument
 * dequoted, with a leading `-` kept.
 */
export function isD1AllowedPragma(pragma: {
	schema?: string | undefined;
	name: string;
	value?: string | undefined;
}): boolean {
	if (pragma.schema !== undefined && pragma.schema !== "main") return false;
	const signature = D1_PRAGMAS.get(pragma.name.toLowerCase());
	const value = pragma.value;
	switch (signature) {
		case undefined:
			return false;
		case "any":
			return true;
		case "no-arg":
			return value === undefined;
		case "boolean": {
			if (value === undefined) return true;
			const unquoted = /^(['"]).*\1$/s.test(value) ? value.slice(1, -1) : value;
			return BOOLEAN_PREFIX.test(unquoted);
		}
		case "object-name":
			return value !== undefined && isD1AllowedName(value);
		case "optional-object-name":
			return value === undefined || isD1AllowedName(value);
		case "null-or-number":
			return value === undefined || isInt32(value);
		case "null-number-or-object-name":
			return value === undefined || /^\d+$/.test(value) || isD1AllowedName(value);
	}
}

// kj's tryParseAs<int32_t>() reads decimal and 0x hex (workerd accepts `PRAGMA optimize(0x10002)`).
const isInt32 = (text: string) => {
	const hex = /^([+-]?)0x([0-9a-f]+)$/i.exec(text);
	const value = hex
		? Number.parseInt(`${hex[1]}${hex[2]}`, 16)
		: /^[+-]?\d+$/.test(text)
			? Number(text)
			: Number.NaN;
	return value >= -(2 ** 31) && value < 2 ** 31;
};

/** The D1 rule a statement breaks; messages are SQLite's / workerd's own. */
export type D1Rule =
	| "transaction"
	| "attach"
	| "temp"
	| "schema"
	| "pragma"
	| "virtual-table"
	| "reserved-name"
	| "function"
	| "compound-select"
	| "expression-depth"
	| "columns";

export interface D1Refusal {
	rule: D1Rule;
	/** What D1 answers (without the `: SQLITE_*` suffix D1 appends). */
	message: string;
	token: SqlToken | undefined;
}

export const D1_NOT_AUTHORIZED = "not authorized";

// workerd api/sql.c++ SqlStorageRegulator::allowTransactions(): the error for BEGIN/SAVEPOINT & co.
export const D1_TRANSACTION_MESSAGE =
	"To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

/** Words that open or close a transaction: refused by D1 (and lint says so). */
export const TRANSACTION_WORDS: ReadonlySet<string> = new Set([
	"BEGIN",
	"COMMIT",
	"END",
	"ROLLBACK",
	"SAVEPOINT",
	"RELEASE",
]);
// Words after which a name denotes a table, view, index or trigger (what isAllowedName() sees).
const OBJECT_NAME_BEFORE: ReadonlySet<string> = new Set([
	"TABLE",
	"INDEX",
	"VIEW",
	"TRIGGER",
	"FROM",
	"JOIN",
	"INTO",
	"UPDATE",
	"ON",
]);
// Words before `name(` that make it an object name, not a function call.
const NOT_A_CALL_AFTER: ReadonlySet<string> = new Set([
	...OBJECT_NAME_BEFORE,
	"REFERENCES",
	"USING",
	"EXISTS",
	"KEY",
	"AS",
]);
const COMPOUND_WORDS: ReadonlySet<string> = new Set(["UNION", "INTERSECT", "EXCEPT"]);

const refuse = (rule: D1Rule, message: string, token: SqlToken | undefined): D1Refusal => ({
	rule,
	message,
	token,
});

/** Reads `[schema.]name` at `n`. */
const qualifiedName = (tokens: readonly SqlToken[], n: number) =>
	tokens[n + 1]?.text === "."
		? { schema: identifierName(tokens[n]), name: tokens[n + 2], next: n + 3 }
		: { schema: undefined, name: tokens[n], next: n + 1 };

const skipIfExists = (tokens: readonly SqlToken[], n: number): number => {
	if (!isWord(tokens[n], "IF")) return n;
	return isWord(tokens[n + 1], "NOT") ? n + 3 : n + 2;
};

/** The statement's tokens after an EXPLAIN [QUERY PLAN] prefix. */
const afterExplain = (tokens: readonly SqlToken[]): readonly SqlToken[] => {
	if (!isWord(tokens[0], "EXPLAIN")) return tokens;
	return tokens.slice(isWord(tokens[1], "QUERY") && isWord(tokens[2], "PLAN") ? 3 : 1);
};

function checkPragma(tokens: readonly SqlToken[]): D1Refusal | undefined {
	const target = qualifiedName(tokens, 1);
	const nameToken = target.name;
	const name = identifierName(nameToken);
	if (name === undefined) return refuse("pragma", D1_NOT_AUTHORIZED, tokens[0]);
	let n = target.next;
	if (tokens[n]?.text === "=" || tokens[n]?.text === "(") n++;
	const sign = tokens[n]?.text === "-" ? "-" : "";
	if (tokens[n]?.text === "-" || tokens[n]?.text === "+") n++;
	const valueToken = tokens[n];
	const value =
		valueToken === undefined || valueToken.text === ")"
			? undefined
			: `${sign}${identifierName(valueToken) ?? valueToken.text}`;
	return isD1AllowedPragma({ schema: target.schema, name, value })
		? undefined
		: refuse("pragma", D1_NOT_AUTHORIZED, nameToken);
}

function checkCreate(tokens: readonly SqlToken[]): D1Refusal | undefined {
	let n = 1;
	if (isWord(tokens[n], "TEMP", "TEMPORARY")) return refuse("temp", D1_NOT_AUTHORIZED, tokens[n]);
	if (isWord(tokens[n], "UNIQUE")) n++;
	const virtual = isWord(tokens[n], "VIRTUAL");
	if (virtual) n++;
	if (!isWord(tokens[n], "TABLE", "INDEX", "VIEW", "TRIGGER")) return undefined;
	const target = qualifiedName(tokens, skipIfExists(tokens, n + 1));
	const schema = target.schema?.toLowerCase();
	if (schema === "temp") return refuse("temp", D1_NOT_AUTHORIZED, tokens[n + 1]);
	if (virtual) {
		let using = target.next;
		while (using < tokens.length && !isWord(tokens[using], "USING")) using++;
		const module = identifierName(tokens[using + 1]);
		if (module === undefined || !isD1VirtualTableModule(module)) {
			return refuse("virtual-table", D1_NOT_AUTHORIZED, tokens[using + 1] ?? tokens[n]);
		}
		return undefined;
	}
	if (isWord(tokens[n], "TABLE") && tokens[target.next]?.text === "(") {
		const columns = countColumnDefinitions(tokens, target.next);
		if (columns > D1_SQLITE_LIMITS.column) {
			const name = identifierName(target.name) ?? "?";
			return refuse("columns", `too many columns on ${name}`, target.name);
		}
	}
	return undefined;
}

const CONSTRAINT_WORDS: ReadonlySet<string> = new Set([
	"CONSTRAINT",
	"PRIMARY",
	"UNIQUE",
	"CHECK",
	"FOREIGN",
]);

/** Column definitions (not table constraints) in `CREATE TABLE name ( ... )` opening at `open`. */
export function countColumnDefinitions(tokens: readonly SqlToken[], open: number): number {
	let depth = 0;
	let count = 0;
	let expectName = false;
	for (let n = open; n < tokens.length; n++) {
		const token = tokens[n] as SqlToken;
		if (token.text === "(") {
			depth++;
			expectName = depth === 1;
		} else if (token.text === ")") {
			depth--;
			if (depth === 0) break;
		} else if (depth === 1 && token.text === ",") {
			expectName = true;
		} else if (expectName) {
			if (!isWordIn(token, CONSTRAINT_WORDS)) count++;
			expectName = false;
		}
	}
	return count;
}

/** SQLITE_LIMIT_COMPOUND_SELECT: more than 5 SELECTs joined at one level of one statement. */
function checkCompound(tokens: readonly SqlToken[]): D1Refusal | undefined {
	const terms: number[] = [1];
	for (const token of tokens) {
		if (token.text === "(") terms.push(1);
		else if (token.text === ")") terms.length > 1 && terms.pop();
		else if (token.kind === "semicolon") terms[terms.length - 1] = 1;
		else if (isWordIn(token, COMPOUND_WORDS)) {
			const count = (terms[terms.length - 1] ?? 1) + 1;
			terms[terms.length - 1] = count;
			if (count > D1_SQLITE_LIMITS.compoundSelect) {
				return refuse("compound-select", "too many terms in compound SELECT", token);
			}
		}
	}
	return undefined;
}

// SQLite's binary operators by precedence class, lowest first (sqlite.org/lang_expr.html).
const OPERATOR_CLASSES: readonly (readonly string[])[] = [
	["OR"],
	["AND"],
	["=", "==", "!=", "<>", "IS", "LIKE", "GLOB", "MATCH", "REGEXP"],
	["<", "<=", ">", ">="],
	["&", "|", "<<", ">>"],
	["+", "-"],
	["*", "/", "%"],
	["||", "->", "->>"],
];
const OPERATOR_CLASS = new Map(OPERATOR_CLASSES.flatMap((words, n) => words.map((w) => [w, n])));
// Words that end one operand chain and start another (CASE arms, clauses).
const CHAIN_BREAKS: ReadonlySet<string> = new Set([
	"WHEN",
	"THEN",
	"ELSE",
	"END",
	"CASE",
	"SELECT",
	"FROM",
	"WHERE",
	"SET",
	"VALUES",
	"HAVING",
	"BY",
	"RETURNING",
	"ON",
]);

/**
 * SQLITE_LIMIT_EXPR_DEPTH, estimated: operators at one level build a left-deep tree, as tall as
 * the current run of each precedence class (a lower-precedence operator starts new operands)
 * plus the leaf. On workerd `a=0 OR ... OR a=98` passes and one more term fails.
 */
function checkExpressionDepth(tokens: readonly SqlToken[]): D1Refusal | undefined {
	const fresh = () => OPERATOR_CLASSES.map(() => 0);
	const levels: number[][] = [fresh()];
	for (const token of tokens) {
		const text = token.kind === "operator" ? token.text : token.text.toUpperCase();
		if (text === "(") levels.push(fresh());
		else if (text === ")") levels.length > 1 && levels.pop();
		else if (text === "," || token.kind === "semicolon" || isWordIn(token, CHAIN_BREAKS)) {
			(levels[levels.length - 1] as number[]).fill(0);
		} else {
			const cls =
				token.kind === "operator" || isWord(token, text) ? OPERATOR_CLASS.get(text) : undefined;
			if (cls === undefined) continue;
			const runs = levels[levels.length - 1] as number[];
			runs[cls] = (runs[cls] ?? 0) + 1;
			for (let k = cls + 1; k < runs.length; k++) runs[k] = 0;
			const depth = runs.reduce((a, b) => a + b, 1);
			if (depth > D1_SQLITE_LIMITS.exprDepth) {
				return refuse(
					"expression-depth",
					`Expression tree is too large (maximum depth ${D1_SQLITE_LIMITS.exprDepth})`,
					token,
				);
			}
		}
	}
	return undefined;
}

const RESULT_LIST_ENDS: ReadonlySet<string> = new Set([
	"FROM",
	"WHERE",
	"GROUP",
	"ORDER",
	"LIMIT",
	"UNION",
	"INTERSECT",
	"EXCEPT",
	"WINDOW",
	"HAVING",
]);

/**
 * SQLITE_LIMIT_COLUMN on a SELECT's result list: more than 100 comma-separated terms. A view or
 * trigger body is resolved when used, so workerd accepts creating one (checked through Miniflare).
 */
function checkResultColumns(tokens: readonly SqlToken[]): D1Refusal | undefined {
	if (isWord(tokens[0], "CREATE") && tokens.slice(1, 4).some((t) => isWord(t, "VIEW", "TRIGGER"))) {
		return undefined;
	}
	for (let n = 0; n < tokens.length; n++) {
		if (!isWord(tokens[n], "SELECT")) continue;
		let depth = 0;
		let columns = 1;
		for (let i = n + 1; i < tokens.length; i++) {
			const token = tokens[i] as SqlToken;
			if (token.text === "(") depth++;
			else if (token.text === ")") {
				if (--depth < 0) break;
			} else if (depth === 0 && (token.kind === "semicolon" || isWordIn(token, RESULT_LIST_ENDS)))
				break;
			else if (depth === 0 && token.text === ",") columns++;
		}
		if (columns > D1_SQLITE_LIMITS.column) {
			return refuse("columns", "too many columns in result set", tokens[n]);
		}
	}
	return undefined;
}

/** SQLITE_FUNCTION: a call `name(` to one of SQLite's functions outside the allow-list. */
function checkFunctions(tokens: readonly SqlToken[]): D1Refusal | undefined {
	for (let n = 0; n + 1 < tokens.length; n++) {
		const token = tokens[n] as SqlToken;
		if (token.kind !== "identifier" && token.kind !== "keyword") continue;
		if (tokens[n + 1]?.text !== "(") continue;
		const name = token.text.toLowerCase();
		const missing = D1_MISSING_FUNCTIONS.has(name);
		if (!missing && !D1_REFUSED_FUNCTIONS.has(name)) continue;
		const before = tokens[n - 1];
		if (before !== undefined && (before.text === "." || isWordIn(before, NOT_A_CALL_AFTER))) {
			continue;
		}
		// SQLite's own wording: for a function its build lacks, and for a denied SQLITE_FUNCTION
		// (a SQLITE_ERROR, not SQLITE_AUTH).
		if (missing) return refuse("function", `no such function: ${token.text}`, token);
		return refuse("function", `not authorized to use function: ${token.text}`, token);
	}
	return undefined;
}

/** isAllowedName() on the names of tables, views, indexes and triggers (columns may be `_cf_`). */
function checkReservedNames(tokens: readonly SqlToken[]): D1Refusal | undefined {
	for (let n = 0; n < tokens.length; n++) {
		const token = tokens[n] as SqlToken;
		const renameTo = isWord(token, "TO") && isWord(tokens[n - 1], "RENAME");
		if (!renameTo && !isWordIn(token, OBJECT_NAME_BEFORE)) continue;
		const target = qualifiedName(tokens, skipIfExists(tokens, n + 1));
		const name = identifierName(target.name);
		if (name !== undefined && !isD1AllowedName(name)) {
			return refuse("reserved-name", D1_NOT_AUTHORIZED, target.name);
		}
	}
	return undefined;
}

/** Schemas other than main: ATTACH is refused, so `aux.t` names nothing; `temp.t` is refused. */
function checkSchemas(tokens: readonly SqlToken[]): D1Refusal | undefined {
	for (let n = 0; n + 2 < tokens.length; n++) {
		if (!isWordIn(tokens[n], OBJECT_NAME_BEFORE)) continue;
		const target = qualifiedName(tokens, skipIfExists(tokens, n + 1));
		if (target.schema?.toLowerCase() === "temp") {
			return refuse("temp", D1_NOT_AUTHORIZED, target.name);
		}
	}
	return undefined;
}

/**
 * Whether D1 refuses one statement before running it: workerd's authorizer and its parse-time
 * limits. Undefined when D1 would prepare it (it may still fail as SQLite fails).
 */
export function checkD1Statement(statement: Pick<SqlStatement, "tokens">): D1Refusal | undefined {
	const tokens = afterExplain(statement.tokens);
	const first = tokens[0];
	if (first === undefined) return undefined;
	if (isWordIn(first, TRANSACTION_WORDS)) {
		return refuse("transaction", D1_TRANSACTION_MESSAGE, first);
	}
	if (isWord(first, "ATTACH", "DETACH")) return refuse("attach", D1_NOT_AUTHORIZED, first);
	if (isWord(first, "PRAGMA")) return checkPragma(tokens);
	return (
		(isWord(first, "CREATE") ? checkCreate(tokens) : undefined) ??
		checkSchemas(tokens) ??
		checkReservedNames(tokens) ??
		checkFunctions(tokens) ??
		checkCompound(tokens) ??
		checkResultColumns(tokens) ??
		checkExpressionDepth(tokens)
	);
}

/**
 * Verdicts remembered by text, for lint and the replay, which ask the same of the same files in
 * one run; forgotten all at once past ~4 M characters of keys, so a long process stays bounded.
 */
function rememberedByText<T>(): (key: string, judge: () => T) => T {
	const known = new Map<string, T>();
	let chars = 0;
	return (key, judge) => {
		if (known.has(key)) return known.get(key) as T;
		if (chars > 4_000_000) {
			known.clear();
			chars = 0;
		}
		const verdict = judge();
		known.set(key, verdict);
		chars += key.length;
		return verdict;
	};
}

// A statement's tokens, and so its verdict, follow from its text and where it starts.
const statementVerdict = rememberedByText<D1Refusal | undefined>();

/** checkD1Statement, remembered for a statement met before (same text at the same place). */
export const checkD1StatementOnce = (statement: SqlStatement): D1Refusal | undefined =>
	statementVerdict(
		`${statement.offset}:${statement.line}:${statement.column}:${statement.text}`,
		() => checkD1Statement(statement),
	);

// Text without any of these can break no rule above: checkD1Statement is then skipped, which
// keeps the replay's fast path fast (most migrations are plain CREATE/ALTER/INSERT).
const SUSPECT_WORDS = new RegExp(
	`_cf_|\\b(?:begin|commit|end|rollback|savepoint|release|attach|detach|pragma|virtual|temp|temporary|union|intersect|except|${[...D1_REFUSED_FUNCTIONS, ...D1_MISSING_FUNCTIONS].filter((f) => f !== "if").join("|")})\\b|\\bif\\b(?!\\s+(?:not\\s+)?exists\\b)`,
	"i",
);
// A string, quoted name or comment is one token (sql.ts tokenizeSql), whatever it holds: matched
// whole and not counted, so a seed INSERT's text values do not count as commas or operators.
// An unterminated one is not matched, and its content then counts (more, never fewer).
const LIMIT_TOKENS =
	/'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|\/\*[\s\S]*?\*\/|(,|[-+*/%<>=|&]|\b(?:and|or|is|like|glob|match|regexp)\b)/gi;

export const mayBreakD1Rules = (sql: string): boolean => {
	if (SUSPECT_WORDS.test(sql)) return true;
	// The limits need at least 100 comma or binary-operator tokens somewhere in the text.
	const needed = Math.min(D1_SQLITE_LIMITS.column, D1_SQLITE_LIMITS.exprDepth) - 1;
	let count = 0;
	LIMIT_TOKENS.lastIndex = 0;
	for (let m = LIMIT_TOKENS.exec(sql); m !== null; m = LIMIT_TOKENS.exec(sql)) {
		if (m[1] !== undefined && ++count >= needed) return true;
	}
	return false;
};

const fileVerdict = rememberedByText<boolean>();

/**
 * mayBreakD1Rules of a whole file, remembered. False clears every statement of it: a statement's
 * text is a run of the file's tokens, so it holds no suspect word and no more counted tokens.
 */
export const mayBreakD1RulesOnce = (sql: string): boolean =>
	fileVerdict(sql, () => mayBreakD1Rules(sql));

/** The first statement of `sql` that D1 refuses, with the statement. */
export function findD1Refusal(
	sql: string,
): { statement: SqlStatement; refusal: D1Refusal } | undefined {
	if (!mayBreakD1RulesOnce(sql)) return undefined;
	for (const statement of splitStatements(sql)) {
		if (!mayBreakD1Rules(statement.text)) continue;
		const refusal = checkD1StatementOnce(statement);
		if (refusal) return { statement, refusal };
	}
	return undefined;
}

/**
 * workerd util/sqlite.c++ prepareSql(MULTI) hands sqlite3_prepare_v3() the whole remaining text
 * of a request, and SQLite refuses more than SQLITE_LIMIT_SQL_LENGTH bytes there ("statement too
 * long"), so a multi-statement request is refused once its text exceeds 100,000 bytes
 * (workers-sdk#6347: wrangler --remote fails where --local, which splits, works).
 */
export const exceedsD1RequestLength = (sql: string): boolean =>
	utf8ByteLength(sql) > D1_SQLITE_LIMITS.sqlLength;

/** SQLite's message for a LIKE/GLOB pattern over SQLITE_LIMIT_LIKE_PATTERN_LENGTH bytes. */
export const D1_LIKE_PATTERN_MESSAGE = "LIKE or GLOB pattern too complex";

// ---- Limits SQLite checks while compiling a statement against the current schema ----

/** A trigger as sqlite_schema holds it. */
export interface D1SchemaTrigger {
	name: string;
	table: string;
	sql: string;
}

/** One column pair of a foreign key (PRAGMA foreign_key_list). */
export interface D1SchemaForeignKey {
	child: string;
	id: number;
	parent: string;
	from: string;
	/** Null when the key references the parent's primary key. */
	to: string | null;
	onDelete: string;
	onUpdate: string;
}

/** The schema facts the trigger depth depends on; triggers newest first, as SQLite lists them. */
export interface D1TriggerSchema {
	triggers: readonly D1SchemaTrigger[];
	foreignKeys: readonly D1SchemaForeignKey[];
}

/** A row change a statement compiles: a table, the operation and, for UPDATE, the columns set. */
export interface D1RowChange {
	table: string;
	op: "INSERT" | "UPDATE" | "DELETE";
	/** Columns an UPDATE sets (lower case); undefined when unknown (every trigger counts). */
	columns?: readonly string[];
	/** DROP TABLE: the implicit DELETE of sqlite3FkDropTable() runs with the table's triggers off. */
	withoutTriggers?: boolean;
}

const DML_WORDS = ["INSERT", "REPLACE", "UPDATE", "DELETE"];

/** Columns after SET: a name (or a parenthesised list of names) before `=`, at the top level. */
function updatedColumns(tokens: readonly SqlToken[], set: number): string[] {
	const columns: string[] = [];
	let depth = 0;
	let group: string[] = [];
	for (let n = set + 1; n < tokens.length; n++) {
		const token = tokens[n] as SqlToken;
		if (token.text === "(") {
			depth++;
			if (depth === 1) group = [];
		} else if (token.text === ")") {
			depth--;
			if (depth === 0 && tokens[n + 1]?.text === "=") columns.push(...group);
		} else if (depth === 0 && isWord(token, "FROM", "WHERE", "RETURNING", "ORDER", "LIMIT")) break;
		else if (depth === 1) {
			const name = identifierName(token);
			if (name !== undefined && token.text !== ",") group.push(name.toLowerCase());
		} else if (depth === 0 && tokens[n + 1]?.text === "=") {
			const name = identifierName(token);
			if (name !== undefined) columns.push(name.toLowerCase());
		}
	}
	return columns;
}

/**
 * The row change a DML statement (a migration's, or one step of a trigger body) compiles; DROP
 * TABLE too, whose implicit DELETE fires the children's ON DELETE actions. Undefined otherwise.
 */
export function parseRowChange(tokens: readonly SqlToken[]): D1RowChange | undefined {
	let n = 0;
	if (isWord(tokens[0], "WITH")) {
		let depth = 0;
		for (n = 1; n < tokens.length; n++) {
			const text = tokens[n]?.text;
			if (text === "(") depth++;
			else if (text === ")") depth--;
			else if (depth === 0 && isWord(tokens[n], ...DML_WORDS, "SELECT")) break;
		}
	}
	const verb = tokens[n]?.text.toUpperCase();
	const nameAt = (at: number) => {
		const target = qualifiedName(tokens, at);
		return { table: identifierName(target.name)?.toLowerCase(), next: target.next };
	};
	if (verb === "DROP" && isWord(tokens[n + 1], "TABLE")) {
		const { table } = nameAt(skipIfExists(tokens, n + 2));
		return table ? { table, op: "DELETE", withoutTriggers: true } : undefined;
	}
	if (!isWord(tokens[n], ...DML_WORDS)) return undefined;
	let at = n + 1;
	if (isWord(tokens[at], "OR")) at += 2;
	if (verb === "INSERT" || verb === "REPLACE") {
		if (isWord(tokens[at], "INTO")) at++;
		const { table } = nameAt(at);
		return table ? { table, op: "INSERT" } : undefined;
	}
	if (verb === "DELETE") {
		const { table } = nameAt(isWord(tokens[at], "FROM") ? at + 1 : at);
		return table ? { table, op: "DELETE" } : undefined;
	}
	const { table, next } = nameAt(at);
	let set = next;
	while (set < tokens.length && !isWord(tokens[set], "SET")) set++;
	if (!table) return undefined;
	return {
		table,
		op: "UPDATE",
		columns: set < tokens.length ? updatedColumns(tokens, set) : undefined,
	};
}

interface TriggerProgram {
	name: string;
	table: string;
	op: D1RowChange["op"];
	/** UPDATE OF columns (lower case); undefined: any UPDATE. */
	of: readonly string[] | undefined;
	steps: D1RowChange[];
}

// Parsed once per trigger text: the schema is read again after every migration that changes it.
const parsedTriggers = new Map<string, TriggerProgram | undefined>();

const cachedTriggerProgram = (trigger: D1SchemaTrigger): TriggerProgram | undefined => {
	const key = `${trigger.name}\0${trigger.table}\0${trigger.sql}`;
	if (!parsedTriggers.has(key)) {
		if (parsedTriggers.size > 10_000) parsedTriggers.clear();
		parsedTriggers.set(key, parseTriggerProgram(trigger));
	}
	return parsedTriggers.get(key);
};

/** A trigger's event and the row changes of its body, read from its CREATE TRIGGER text. */
export function parseTriggerProgram(trigger: D1SchemaTrigger): TriggerProgram | undefined {
	const [statement] = splitStatements(trigger.sql);
	const tokens = statement?.tokens ?? [];
	const begin = tokens.findIndex((t) => isWord(t, "BEGIN"));
	const event = tokens.findIndex((t, n) => n < begin && isWord(t, "INSERT", "UPDATE", "DELETE"));
	if (begin < 0 || event < 0) return undefined;
	const op = (tokens[event] as SqlToken).text.toUpperCase() as D1RowChange["op"];
	let of: string[] | undefined;
	if (op === "UPDATE" && isWord(tokens[event + 1], "OF")) {
		of = [];
		for (let n = event + 2; n < begin && !isWord(tokens[n], "ON"); n++) {
			const name = identifierName(tokens[n]);
			if (name !== undefined && tokens[n]?.text !== ",") of.push(name.toLowerCase());
		}
	}
	// The body: the steps between BEGIN and the final END, each ended by `;`.
	const steps: D1RowChange[] = [];
	let step: SqlToken[] = [];
	for (const token of tokens.slice(begin + 1, -1)) {
		if (token.kind !== "semicolon") {
			step.push(token);
			continue;
		}
		const change = parseRowChange(step);
		if (change && !change.withoutTriggers) steps.push(change);
		step = [];
	}
	return { name: trigger.name, table: trigger.table.toLowerCase(), op, of, steps };
}

/** A trigger program's body, or an FK action compiled as one (sqlite3FkActions, fkey.c). */
interface Program {
	key: string;
	steps: readonly D1RowChange[];
}

/** The programs SQLite compiles for one row change, in its order: triggers, then FK actions. */
export type D1ProgramLookup = (change: D1RowChange) => Program[];

const ACTIONS = ["CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT"];

/** Builds the lookup from the schema, once per schema version. */
export function planTriggerPrograms(schema: D1TriggerSchema): D1ProgramLookup {
	// Indexed by table: the lookup runs once per node of every nesting walk.
	const triggers = new Map<string, TriggerProgram[]>();
	for (const t of schema.triggers.map(cachedTriggerProgram)) {
		if (t) triggers.get(t.table)?.push(t) ?? triggers.set(t.table, [t]);
	}
	const keys = new Map<string, D1SchemaForeignKey[]>();
	for (const fk of schema.foreignKeys) {
		const id = `${fk.child.toLowerCase()}\0${fk.id}`;
		keys.get(id)?.push(fk) ?? keys.set(id, [fk]);
	}
	const byParent = new Map<string, D1SchemaForeignKey[][]>();
	for (const group of keys.values()) {
		const parent = (group[0] as D1SchemaForeignKey).parent.toLowerCase();
		byParent.get(parent)?.push(group) ?? byParent.set(parent, [group]);
	}
	return (change) => {
		const table = change.table.toLowerCase();
		const programs: Program[] = [];
		if (!change.withoutTriggers) {
			for (const t of triggers.get(table) ?? []) {
				if (t.op !== change.op) continue;
				const of = t.of;
				const cols = change.columns;
				if (of && cols && !of.some((c) => cols.includes(c))) continue;
				programs.push({ key: `trigger ${t.name}`, steps: t.steps });
			}
		}
		if (change.op === "INSERT") return programs;
		for (const group of byParent.get(table) ?? []) {
			const first = group[0] as D1SchemaForeignKey;
			const action = (change.op === "DELETE" ? first.onDelete : first.onUpdate).toUpperCase();
			if (!ACTIONS.includes(action)) continue;
			// fkParentIsModified(): an UPDATE that sets none of the parent key's columns has no action.
			const cols = change.columns;
			if (
				change.op === "UPDATE" &&
				cols &&
				!group.some((k) => k.to === null || cols.includes(k.to.toLowerCase()))
			)
				continue;
			const child = first.child.toLowerCase();
			const columns = group.map((k) => k.from.toLowerCase());
			const steps: D1RowChange[] =
				action === "RESTRICT"
					? []
					: change.op === "DELETE" && action === "CASCADE"
						? [{ table: child, op: "DELETE" }]
						: [{ table: child, op: "UPDATE", columns }];
			programs.push({ key: `fk ${child} ${first.id} ${change.op}`, steps });
		}
		return programs;
	};
}

/**
 * SQLITE_LIMIT_TRIGGER_DEPTH as SQLite 3.54 applies it while compiling (trigger.c
 * codeRowTrigger(): "triggers nested too deep" once a trigger program would be compiled 10
 * levels down), so it refuses the statement even on empty tables; each program is compiled once
 * per statement (getRowTrigger() reuses it), FK actions count as programs (fkey.c
 * fkActionTrigger()). The deepest nesting one row change compiles.
 */
export function triggerDepth(programsFor: D1ProgramLookup, change: D1RowChange): number {
	const compiled = new Set<string>();
	const visit = (c: D1RowChange, depth: number): number => {
		let deepest = depth;
		for (const program of programsFor(c)) {
			if (compiled.has(program.key)) continue;
			compiled.add(program.key);
			// Past the limit nothing deeper matters; stop so a wide schema stays cheap.
			if (depth + 1 > D1_SQLITE_LIMITS.triggerDepth) return depth + 1;
			for (const step of program.steps) deepest = Math.max(deepest, visit(step, depth + 1));
			deepest = Math.max(deepest, depth + 1);
		}
		return deepest;
	};
	return visit(change, 0);
}

export const D1_TRIGGER_DEPTH_MESSAGE = "triggers nested too deep";
export const D1_RESULT_COLUMNS_MESSAGE = "too many columns in result set";
