import { D1_MAX_STATEMENT_BYTES } from "../constants.ts";
import type { Finding, Severity } from "../report/model.ts";
import {
	checkD1StatementOnce,
	D1_PRAGMAS,
	D1_SQLITE_LIMITS,
	D1_VIRTUAL_TABLE_MODULES,
	exceedsD1RequestLength,
	isD1VirtualTableModule,
	mayBreakD1Rules,
	mayBreakD1RulesOnce,
	TRANSACTION_WORDS,
} from "./d1-rules.ts";
import {
	compareAsLocale,
	findTopLevelWord,
	identifierName,
	isCommentToken,
	isWord,
	isWordIn,
	type SqlStatement,
	type SqlToken,
	splitStatements,
	startsWithWords,
	tokenizeSql,
} from "./sql.ts";

export interface LintRule {
	code: string;
	severity: Severity;
	summary: string;
}

/** Every rule lintMigration can report, for docs and `--help` listings. */
export const LINT_RULES = [
	{
		code: "D1_TRANSACTION",
		severity: "error",
		summary:
			"BEGIN/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE statement; D1 refuses explicit transactions",
	},
	{ code: "D1_PRAGMA", severity: "error", summary: "PRAGMA outside D1's allow-list" },
	{
		code: "D1_FOREIGN_KEYS_OFF",
		severity: "error",
		summary: "PRAGMA foreign_keys = OFF is a no-op on D1; use PRAGMA defer_foreign_keys = ON",
	},
	{
		code: "D1_RESERVED_NAME",
		severity: "error",
		summary: "table, index, view or trigger named with D1's reserved _cf_ prefix",
	},
	{ code: "D1_ATTACH", severity: "error", summary: "ATTACH/DETACH; D1 has a single database" },
	{ code: "D1_TEMP_OBJECT", severity: "error", summary: "CREATE TEMP table, view or trigger" },
	{
		code: "D1_VIRTUAL_TABLE",
		severity: "error",
		summary: "virtual table module other than fts5, fts5vocab, rtree or rtree_i32",
	},
	{
		code: "D1_FUNCTION",
		severity: "error",
		summary:
			"SQLite function outside D1's allow-list (e.g. sqlite_version(), power(), json_pretty())",
	},
	{
		code: "D1_LIMIT",
		severity: "error",
		summary:
			"over a SQLite limit D1 sets: more than 100 columns, more than 5 compound SELECT terms, expression depth over 100",
	},
	{
		code: "D1_REQUEST_TOO_LARGE",
		severity: "warning",
		summary: `migration over ${D1_SQLITE_LIMITS.sqlLength} bytes: one D1 request cannot carry it (wrangler --remote fails with SQLITE_TOOBIG)`,
	},
	{
		code: "D1_ADD_NOT_NULL",
		severity: "warning",
		summary:
			"ALTER TABLE ... ADD COLUMN ... NOT NULL without a non-NULL DEFAULT fails on a table with rows",
	},
	{
		code: "D1_STATEMENT_TOO_LARGE",
		severity: "error",
		summary: `statement over D1's ${D1_MAX_STATEMENT_BYTES}-byte limit`,
	},
	{
		code: "D1_DESTRUCTIVE",
		severity: "warning",
		summary: "DROP TABLE, DROP COLUMN, or DELETE/UPDATE without WHERE: data loss",
	},
	{
		code: "D1_MISSING_SEMICOLON",
		severity: "error",
		summary: "last statement has no `;`, so wrangler's appended ledger INSERT fails",
	},
	{
		code: "D1_LOCAL_BOM_TRIGGER",
		severity: "warning",
		summary:
			"a BOM file whose first statement is CREATE TRIGGER: wrangler --local splits the trigger and fails",
	},
	{
		code: "D1_LOCAL_TRANSACTION_TEXT",
		severity: "warning",
		summary:
			"the text BEGIN TRANSACTION in a comment or value: wrangler --local refuses the file or strips text from it",
	},
	{
		code: "SQL_UNTERMINATED",
		severity: "error",
		summary: "unterminated string, quoted identifier, blob or block comment",
	},
	{
		code: "LINT_SUPPRESSION_REASON",
		severity: "error",
		summary: "workers-pipeline-disable comment without a reason",
	},
	{
		code: "LINT_SUPPRESSION_UNKNOWN",
		severity: "error",
		summary: "workers-pipeline-disable comment naming no known rule",
	},
] as const satisfies readonly LintRule[];

export type LintCode = (typeof LINT_RULES)[number]["code"];

/** D1's PRAGMA allow-list (workerd util/sqlite.c++ ALLOWED_PRAGMAS; see d1-rules.ts). */
export const D1_ALLOWED_PRAGMAS: ReadonlySet<string> = new Set(D1_PRAGMAS.keys());

const FALSE_VALUES = new Set(["off", "0", "false", "no"]);
const RESERVED_PREFIX = "_cf_";
const DISABLE_DIRECTIVE = /^\s*workers-pipeline-disable\b(.*)$/is;
const SUPPRESSIBLE = new Set<string>(
	LINT_RULES.map((r) => r.code).filter((c) => !c.startsWith("LINT_SUPPRESSION_")),
);
const SEVERITY = new Map<string, Severity>(LINT_RULES.map((r) => [r.code, r.severity]));

const DATA_LOSS_ADVICE =
	"Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.";

type Emit = (code: LintCode, at: SqlToken | SqlStatement, message: string) => void;

const tokenAt = (statement: SqlStatement, n: number): SqlToken | undefined => statement.tokens[n];

/** Index just past an optional `IF NOT EXISTS` / `IF EXISTS` at `n`. */
const skipIfExists = (tokens: readonly SqlToken[], n: number): number => {
	if (!isWord(tokens[n], "IF")) return n;
	return isWord(tokens[n + 1], "NOT") ? n + 3 : n + 2;
};

/** Reads `[schema.]name` at `n`: the name token, the schema name and the index after it. */
const readQualifiedName = (tokens: readonly SqlToken[], n: number) => {
	if (tokens[n + 1]?.text === ".") {
		return { schema: identifierName(tokens[n]), name: tokens[n + 2], next: n + 3 };
	}
	return { schema: undefined, name: tokens[n], next: n + 1 };
};

/** Skips a leading `WITH ... AS (...)` clause; returns the index of the main verb. */
const mainVerbIndex = (tokens: readonly SqlToken[]): number => {
	if (!isWord(tokens[0], "WITH")) return 0;
	// The earliest top-level verb wins, so an upsert's `DO UPDATE` is not taken for the verb.
	const found = ["DELETE", "UPDATE", "INSERT", "REPLACE", "SELECT"]
		.map((verb) => findTopLevelWord(tokens, verb, 1))
		.filter((n) => n !== -1);
	return found.length === 0 ? 0 : Math.min(...found);
};

const isReserved = (name: string | undefined): name is string =>
	name?.toLowerCase().startsWith(RESERVED_PREFIX) === true;

const checkReservedName = (token: SqlToken | undefined, what: string, emit: Emit) => {
	const name = identifierName(token);
	if (token === undefined || !isReserved(name)) return;
	emit(
		"D1_RESERVED_NAME",
		token,
		`${what} "${name}" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_${name.slice(RESERVED_PREFIX.length)}").`,
	);
};

const lintCreate = (statement: SqlStatement, emit: Emit) => {
	const tokens = statement.tokens;
	let n = 1;
	const temp = isWord(tokens[n], "TEMP", "TEMPORARY") ? tokens[n] : undefined;
	if (temp !== undefined) n++;
	const unique = isWord(tokens[n], "UNIQUE");
	if (unique) n++;
	const virtual = isWord(tokens[n], "VIRTUAL");
	if (virtual) n++;
	const kindToken = tokens[n];
	if (!isWord(kindToken, "TABLE", "INDEX", "VIEW", "TRIGGER")) return;
	const kind = (kindToken?.text ?? "").toLowerCase();
	const target = readQualifiedName(tokens, skipIfExists(tokens, n + 1));

	const tempSchema = target.schema?.toLowerCase() === "temp" ? tokens[n + 1] : undefined;
	const tempAt = temp ?? tempSchema;
	if (tempAt !== undefined) {
		emit(
			"D1_TEMP_OBJECT",
			tempAt,
			`CREATE TEMP ${kind.toUpperCase()} makes a connection-local object that D1 does not keep between requests. Create a regular ${kind} (and drop it at the end of the migration if it is scratch space).`,
		);
	}

	checkReservedName(target.name, virtual ? "virtual table" : kind, emit);

	if (virtual && kind === "table") {
		const using = findTopLevelWord(tokens, "USING", target.next);
		const moduleToken = using === -1 ? undefined : tokens[using + 1];
		const module = identifierName(moduleToken);
		if (moduleToken !== undefined && module !== undefined) {
			if (!isD1VirtualTableModule(module)) {
				emit(
					"D1_VIRTUAL_TABLE",
					moduleToken,
					`Virtual table module "${module}" is not available on D1, which allows only ${D1_VIRTUAL_TABLE_MODULES.join(", ")}. Use one of those, or a regular table.`,
				);
			}
		}
	}
};

const lintAlter = (statement: SqlStatement, emit: Emit) => {
	const tokens = statement.tokens;
	if (!isWord(tokens[1], "TABLE")) return;
	const table = readQualifiedName(tokens, 2);
	const tableName = identifierName(table.name) ?? "?";
	let n = table.next;
	const action = tokens[n];
	if (isWord(action, "RENAME")) {
		n++;
		if (isWord(tokens[n], "TO")) {
			checkReservedName(tokens[n + 1], "table", emit);
			return;
		}
		return;
	}
	if (isWord(action, "ADD")) return lintAddColumn(statement, n + 1, tableName, emit);
	if (isWord(action, "DROP") && action !== undefined) {
		n++;
		if (isWord(tokens[n], "COLUMN")) n++;
		const column = identifierName(tokens[n]) ?? "?";
		emit(
			"D1_DESTRUCTIVE",
			action,
			`ALTER TABLE ${tableName} DROP COLUMN ${column} deletes that column's data in every row. ${DATA_LOSS_ADVICE}`,
		);
	}
};

const lintDrop = (statement: SqlStatement, emit: Emit, renamedTo: ReadonlySet<string>) => {
	const tokens = statement.tokens;
	const drop = tokens[0];
	if (drop === undefined || !isWord(tokens[1], "TABLE")) return;
	const target = readQualifiedName(tokens, skipIfExists(tokens, 2));
	const name = identifierName(target.name) ?? "?";
	const rebuild = renamedTo.has(name.toLowerCase());
	const what = rebuild
		? `DROP TABLE ${name} is part of a table rebuild (a later ALTER TABLE ... RENAME TO ${name}); every row not copied by the INSERT ... SELECT is lost, and with foreign keys on, ON DELETE CASCADE fires on child tables.`
		: `DROP TABLE ${name} deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE).`;
	emit("D1_DESTRUCTIVE", drop, `${what} ${DATA_LOSS_ADVICE}`);
};

const lintUnfilteredWrite = (statement: SqlStatement, emit: Emit) => {
	const tokens = statement.tokens;
	const verbAt = mainVerbIndex(tokens);
	const verb = tokens[verbAt];
	if (!isWord(verb, "DELETE", "UPDATE") || verb === undefined) return;
	if (findTopLevelWord(tokens, "WHERE", verbAt + 1) !== -1) return;
	const isDelete = isWord(verb, "DELETE");
	const target = readQualifiedName(tokens, isDelete ? verbAt + 2 : skipOr(tokens, verbAt + 1));
	const name = identifierName(target.name) ?? "?";
	const what = isDelete
		? `DELETE FROM ${name} without WHERE deletes every row.`
		: `UPDATE ${name} without WHERE overwrites the SET columns in every row.`;
	emit("D1_DESTRUCTIVE", verb, `${what} ${DATA_LOSS_ADVICE}`);
};

/** Skips `OR <conflict>` after UPDATE. */
const skipOr = (tokens: readonly SqlToken[], n: number): number =>
	isWord(tokens[n], "OR") ? n + 2 : n;

/** `PRAGMA [main.]<name> = <value>` or `PRAGMA <name>(<value>)`: the value, lower case. */
const pragmaValue = (statement: SqlStatement, name: string): string | undefined => {
	const tokens = statement.tokens;
	if (!isWord(tokens[0], "PRAGMA")) return undefined;
	const target = readQualifiedName(tokens, 1);
	if (identifierName(target.name)?.toLowerCase() !== name) return undefined;
	const operator = tokens[target.next]?.text;
	const value = tokens[target.next + 1];
	if ((operator !== "=" && operator !== "(") || value === undefined) return undefined;
	return (identifierName(value) ?? value.text).toLowerCase();
};

const deferOnOffset = (statements: readonly SqlStatement[]): number => {
	const on = statements.find((s) => {
		const value = pragmaValue(s, "defer_foreign_keys");
		return value !== undefined && !FALSE_VALUES.has(value);
	});
	return on?.offset ?? Number.POSITIVE_INFINITY;
};

const lintPragma = (statement: SqlStatement, emit: Emit, file: FileFacts) => {
	const tokens = statement.tokens;
	const target = readQualifiedName(tokens, 1);
	const nameToken = target.name;
	const written = identifierName(nameToken);
	if (nameToken === undefined || written === undefined) return;
	const name = written.toLowerCase();
	if (!D1_ALLOWED_PRAGMAS.has(name)) {
		emit(
			"D1_PRAGMA",
			nameToken,
			`PRAGMA ${name} is not on D1's list of supported PRAGMAs, so D1 rejects the migration. Remove it (D1 manages journaling, sync and page settings itself); supported: ${[...D1_ALLOWED_PRAGMAS].join(", ")}.`,
		);
		return;
	}
	const refusal = checkD1StatementOnce(statement);
	if (refusal?.rule === "pragma") {
		emit(
			"D1_PRAGMA",
			refusal.token ?? nameToken,
			`D1 refuses this PRAGMA ${name} ("not authorized"): ${target.schema !== undefined && target.schema !== "main" ? `only the main schema may be named, not "${target.schema}"` : "its argument is not one D1 accepts (a boolean, a table name not starting with _cf_, or a number, depending on the PRAGMA)"}.`,
		);
		return;
	}
	if (name !== "foreign_keys") return;
	// Both `foreign_keys = OFF` and `foreign_keys(OFF)` put the value one token after the operator.
	const value = pragmaValue(statement, "foreign_keys");
	const valueToken = tokens[target.next + 1];
	if (value === undefined || valueToken === undefined || !FALSE_VALUES.has(value)) return;
	// After `defer_foreign_keys = ON` the no-op does no harm: the rebuild is already done D1's way
	// (Prisma writes both); what the DROP still cascades, the replay reports (REPLAY_DROP_CASCADE).
	if (statement.offset > file.deferredFrom) return;
	emit(
		"D1_FOREIGN_KEYS_OFF",
		valueToken,
		"PRAGMA foreign_keys = OFF is a no-op on D1 (each migration runs inside a transaction, where SQLite ignores it), so foreign keys stay enforced and a table rebuild's DROP TABLE fails or cascades deletes into child tables. Put `PRAGMA defer_foreign_keys = ON;` at the start of the migration instead (`= OFF` at the end is optional); it defers checks to commit but does not stop ON DELETE CASCADE, so copy child rows aside before dropping a parent table.",
	);
};

/** The column definition after ALTER TABLE t ADD [COLUMN]: NOT NULL needs a non-NULL DEFAULT. */
const lintAddColumn = (statement: SqlStatement, n: number, table: string, emit: Emit) => {
	const tokens = statement.tokens;
	const at = isWord(tokens[n], "COLUMN") ? n + 1 : n;
	const column = identifierName(tokens[at]) ?? "?";
	let notNull: SqlToken | undefined;
	let defaultValue: SqlToken | undefined;
	let depth = 0;
	for (let i = at + 1; i < tokens.length; i++) {
		const token = tokens[i] as SqlToken;
		if (token.text === "(") depth++;
		else if (token.text === ")") depth--;
		else if (depth > 0) continue;
		else if (isWord(token, "NOT") && isWord(tokens[i + 1], "NULL")) notNull = token;
		else if (isWord(token, "DEFAULT")) defaultValue = tokens[i + 1];
		else if (isWord(token, "AS", "GENERATED")) return;
	}
	if (notNull === undefined) return;
	if (defaultValue !== undefined && !isWord(defaultValue, "NULL")) return;
	emit(
		"D1_ADD_NOT_NULL",
		notNull,
		`ALTER TABLE ${table} ADD COLUMN ${column} ... NOT NULL has no non-NULL DEFAULT: it works on an empty database (and in a fresh replay) but SQLite refuses it on a table that has rows ("Cannot add a NOT NULL column with default value NULL"). Give it a DEFAULT, or add it nullable, backfill, then rebuild the table with NOT NULL.`,
	);
};

/** What lintStatement needs to know of the whole file. */
interface FileFacts {
	renamedTo: ReadonlySet<string>;
	/** Offset of the first `PRAGMA defer_foreign_keys = ON` (Infinity: none). */
	deferredFrom: number;
	/** mayBreakD1Rules of the whole text: false clears every statement of the D1 check. */
	mayBreakD1: boolean;
}

const lintStatement = (statement: SqlStatement, emit: Emit, file: FileFacts) => {
	const first = statement.tokens[0];
	if (first === undefined) return;
	if (isWordIn(first, TRANSACTION_WORDS)) {
		emit(
			"D1_TRANSACTION",
			first,
			`${first.text.toUpperCase()} controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.`,
		);
		return;
	}
	if (isWord(first, "ATTACH", "DETACH")) {
		emit(
			"D1_ATTACH",
			first,
			`${first.text.toUpperCase()} is not supported: a D1 database is a single SQLite database and cannot attach others. Remove it and use a separate D1 binding instead.`,
		);
		return;
	}
	if (isWord(first, "PRAGMA")) return lintPragma(statement, emit, file);
	if (file.mayBreakD1) lintD1Refusal(statement, emit);
	if (isWord(first, "CREATE")) return lintCreate(statement, emit);
	if (isWord(first, "ALTER")) return lintAlter(statement, emit);
	if (isWord(first, "DROP")) return lintDrop(statement, emit, file.renamedTo);
	lintUnfilteredWrite(statement, emit);
};

/** The refusals of d1-rules.ts that no other rule here reports: functions and SQLite limits. */
const lintD1Refusal = (statement: SqlStatement, emit: Emit) => {
	// Most statements hold nothing D1 could refuse: skip the full check (it is most of lint's time).
	if (!mayBreakD1Rules(statement.text)) return;
	const refusal = checkD1StatementOnce(statement);
	if (refusal === undefined) return;
	const at = refusal.token ?? statement;
	if (refusal.rule === "function") {
		const name = refusal.token?.text ?? "?";
		emit(
			"D1_FUNCTION",
			at,
			refusal.message.startsWith("no such function")
				? `${name}() does not exist in D1's SQLite (workerd builds it without it), so D1 fails the statement ("${refusal.message}"), though SQLite elsewhere may have it. Remove the call or compute the value in the application.`
				: `${name}() is a SQLite function D1 does not allow (workerd's function allow-list), so D1 refuses the statement ("not authorized"). Remove the call or compute the value in the application.`,
		);
		return;
	}
	if (
		refusal.rule === "compound-select" ||
		refusal.rule === "columns" ||
		refusal.rule === "expression-depth"
	) {
		const advice =
			refusal.rule === "columns"
				? `D1 allows at most ${D1_SQLITE_LIMITS.column} columns per table: split the table.`
				: refusal.rule === "compound-select"
					? `D1 allows at most ${D1_SQLITE_LIMITS.compoundSelect} SELECTs joined by UNION/INTERSECT/EXCEPT: use a multi-row VALUES list or several statements.`
					: `D1 allows expressions at most ${D1_SQLITE_LIMITS.exprDepth} levels deep: use IN (...) instead of long OR chains, or split the statement.`;
		emit("D1_LIMIT", at, `D1 refuses this statement ("${refusal.message}"). ${advice}`);
	}
};

/** Lower-cased names that some ALTER TABLE ... RENAME TO gives a table in this file. */
const renameTargets = (statements: readonly SqlStatement[]): Set<string> => {
	const names = new Set<string>();
	for (const statement of statements) {
		if (!startsWithWords(statement, "ALTER", "TABLE")) continue;
		const table = readQualifiedName(statement.tokens, 2);
		if (!isWord(tokenAt(statement, table.next), "RENAME")) continue;
		if (!isWord(tokenAt(statement, table.next + 1), "TO")) continue;
		const name = identifierName(tokenAt(statement, table.next + 2));
		if (name !== undefined) names.add(name.toLowerCase());
	}
	return names;
};

interface Suppressions {
	codes: Set<string>;
	findings: Finding[];
}

/** The comment body without its `--` or `/* *\/` markers. */
const commentBody = (token: SqlToken): string => {
	if (token.kind === "line-comment") return token.text.slice(2);
	return token.text.slice(2, token.unterminated ? undefined : -2);
};

const parseSuppressions = (tokens: readonly SqlToken[], file: string): Suppressions => {
	const codes = new Set<string>();
	const findings: Finding[] = [];
	const report = (code: LintCode, token: SqlToken, message: string) =>
		findings.push({
			code,
			severity: "error",
			message,
			file,
			line: token.line,
			column: token.column,
		});
	for (const token of tokens) {
		if (!isCommentToken(token)) continue;
		const match = DISABLE_DIRECTIVE.exec(commentBody(token));
		if (match === null) continue;
		const rest = (match[1] ?? "").trim();
		const code = /^[A-Za-z0-9_]+/.exec(rest)?.[0]?.toUpperCase();
		if (code === undefined || !SUPPRESSIBLE.has(code)) {
			report(
				"LINT_SUPPRESSION_UNKNOWN",
				token,
				`workers-pipeline-disable names ${code === undefined ? "no rule" : `unknown rule "${code}"`}, so nothing is silenced. Use one of: ${[...SUPPRESSIBLE].join(", ")}.`,
			);
			continue;
		}
		const afterCode = rest.slice(code.length).trim();
		const reason = afterCode.startsWith(":") ? afterCode.slice(1).trim() : "";
		if (reason === "") {
			report(
				"LINT_SUPPRESSION_REASON",
				token,
				`Suppressing ${code} needs a reason, so ${code} stays active. Write it as \`-- workers-pipeline-disable ${code}: <why this is safe>\`.`,
			);
			continue;
		}
		codes.add(code);
	}
	return { codes, findings };
};

const byPosition = (a: Finding, b: Finding): number =>
	(a.line ?? 0) - (b.line ?? 0) ||
	(a.column ?? 0) - (b.column ?? 0) ||
	compareAsLocale(a.code, b.code);

/** Lints one migration file for D1; returns findings sorted by position, never throws. */
/** CREATE [TEMP|TEMPORARY] TRIGGER. */
const startsTrigger = (statement: SqlStatement): boolean => {
	const words = statement.tokens.slice(0, 3);
	return (
		isWord(words[0], "CREATE") &&
		(isWord(words[1], "TRIGGER") ||
			(isWord(words[1], "TEMP", "TEMPORARY") && isWord(words[2], "TRIGGER")))
	);
};

// wrangler's --local path (d1/trimmer.ts trimSqlQuery, case-sensitive, over the whole text):
// with this text anywhere it deletes the first "BEGIN TRANSACTION;" and the first "COMMIT;",
// then refuses the file if the text is still there ("it contains several transactions").
const LOCAL_TRANSACTION_TEXT = "BEGIN TRANSACTION";

/** A comment or quoted value that holds the text trimSqlQuery looks for (statements are D1_TRANSACTION's). */
function lintLocalTransactionText(text: string, tokens: readonly SqlToken[], emit: Emit): void {
	const holders = tokens.filter(
		(t) =>
			(t.kind === "string" || t.kind === "quoted-identifier" || isCommentToken(t)) &&
			t.text.includes(LOCAL_TRANSACTION_TEXT),
	);
	const first = holders[0];
	if (first === undefined) return;
	const times = text.split(LOCAL_TRANSACTION_TEXT).length - 1;
	const trimmed = text.replace(`${LOCAL_TRANSACTION_TEXT};`, "").replace("COMMIT;", "");
	const where = isCommentToken(first) ? "a comment" : "a quoted value";
	emit(
		"D1_LOCAL_TRANSACTION_TEXT",
		first,
		trimmed.includes(LOCAL_TRANSACTION_TEXT)
			? `"${LOCAL_TRANSACTION_TEXT}" appears ${times} times in this file (here in ${where}): \`wrangler d1 migrations apply --local\` refuses such a file ("it contains several transactions", wrangler d1/trimmer.ts), while --remote applies it. Reword the text (e.g. "begin transaction").`
			: `"${LOCAL_TRANSACTION_TEXT}" in ${where}: \`wrangler d1 migrations apply --local\` then deletes the first "${LOCAL_TRANSACTION_TEXT};" and "COMMIT;" wherever they are in the text (wrangler d1/trimmer.ts), so the local database may get other SQL than --remote. Reword the text (e.g. "begin transaction").`,
	);
}

export function lintMigration(file: { name: string; content: string; bom?: boolean }): Finding[] {
	const tokens = tokenizeSql(file.content);
	const statements = splitStatements(file.content, tokens);
	const findings: Finding[] = [];
	const emit: Emit = (code, at, message) =>
		findings.push({
			code,
			severity: SEVERITY.get(code) ?? "error",
			message,
			file: file.name,
			line: at.line,
			column: at.column,
		});

	for (const token of tokens) {
		if (!token.unterminated) continue;
		emit("SQL_UNTERMINATED", token, unterminatedMessage(token));
	}

	const facts = {
		renamedTo: renameTargets(statements),
		deferredFrom: deferOnOffset(statements),
		mayBreakD1: mayBreakD1RulesOnce(file.content),
	};
	for (const statement of statements) {
		if (statement.byteLength > D1_MAX_STATEMENT_BYTES) {
			emit(
				"D1_STATEMENT_TOO_LARGE",
				statement,
				`This statement is ${statement.byteLength} bytes; D1 rejects statements over ${D1_MAX_STATEMENT_BYTES} bytes. Split it into smaller statements (e.g. INSERT the rows in batches of a few hundred).`,
			);
		}
		lintStatement(statement, emit, facts);
	}

	// The request wrangler sends: the file, then its ledger INSERT (ci/migrations/replay.ts).
	const ledgerInsert = `\nINSERT INTO "d1_migrations" (name)\nvalues ('${file.name.split("/").pop() ?? ""}');`;
	if (exceedsD1RequestLength(file.content + ledgerInsert)) {
		const first = statements[0];
		if (first !== undefined) {
			emit(
				"D1_REQUEST_TOO_LARGE",
				first,
				`This migration is ${Buffer.byteLength(file.content, "utf8")} bytes. D1 prepares a request's remaining SQL as one input and refuses it over ${D1_SQLITE_LIMITS.sqlLength} bytes ("statement too long", workers-sdk#6347), so \`wrangler d1 migrations apply --remote\` fails on it although --local works. Split it into several migrations, or load bulk data with \`wrangler d1 execute --file\` (D1's import API).`,
			);
		}
	}

	if (file.content.includes(LOCAL_TRANSACTION_TEXT))
		lintLocalTransactionText(file.content, tokens, emit);
	// wrangler's splitter (d1/splitter.ts, --local only) misses the BEGIN of a trigger that is a
	// BOM file's first statement and cuts it at its first `;` (unstable_splitSqlQuery shows it).
	const firstStatement = statements[0];
	if (file.bom && firstStatement !== undefined && startsTrigger(firstStatement)) {
		emit(
			"D1_LOCAL_BOM_TRIGGER",
			firstStatement,
			'This file starts with a UTF-8 byte order mark and then a CREATE TRIGGER: `wrangler d1 migrations apply --local` splits such a trigger at its first `;` and fails ("incomplete input"), while --remote applies it. Save the file as UTF-8 without BOM (the checksum ignores the BOM).',
		);
	}

	const last = statements[statements.length - 1];
	const lastToken = last?.tokens[last.tokens.length - 1];
	if (last !== undefined && lastToken !== undefined && !last.terminated) {
		if (!last.tokens.some((t) => t.unterminated)) {
			emit(
				"D1_MISSING_SEMICOLON",
				lastToken,
				'The last statement does not end with `;`. wrangler appends its ledger `INSERT INTO d1_migrations ...` to the file and D1 then fails with `near "INSERT": syntax error`. Add `;` after it (for a CREATE TRIGGER, also check its BEGIN ... END is closed).',
			);
		}
	}

	const suppressions = parseSuppressions(tokens, file.name);
	return [
		...findings.filter((f) => !suppressions.codes.has(f.code)),
		...suppressions.findings,
	].sort(byPosition);
}

const unterminatedMessage = (token: SqlToken): string => {
	if (token.kind === "block-comment") {
		return "This /* comment is never closed, so it swallows the rest of the file, including the ledger INSERT wrangler appends (the migration would run but never be recorded). Close it with */.";
	}
	const what =
		token.kind === "string"
			? "string literal"
			: token.kind === "blob"
				? "blob literal"
				: "quoted identifier";
	return `This ${what} (${token.text.slice(0, 1)}) is never closed, so it swallows the rest of the file. Add the closing quote.`;
};

/** One line per finding: `file:line:column severity CODE message`. */
export function formatLintFinding(f: Finding): string {
	const body = `${f.severity} ${f.code} ${f.message}`;
	if (f.file === undefined) return body;
	if (f.line === undefined) return `${f.file} ${body}`;
	if (f.column === undefined) return `${f.file}:${f.line} ${body}`;
	return `${f.file}:${f.line}:${f.column} ${body}`;
}
