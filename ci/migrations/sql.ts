// A small, exact SQLite lexer and statement splitter: enough structure for migration lint,
// never a full parser. Everything here is pure and never throws on bad input.

export type SqlTokenKind =
	| "keyword"
	| "identifier"
	| "quoted-identifier"
	| "string"
	| "blob"
	| "number"
	| "parameter"
	| "operator"
	| "semicolon"
	| "line-comment"
	| "block-comment"
	| "unknown";

export interface SqlToken {
	kind: SqlTokenKind;
	/** The exact source text, quotes and comment markers included. */
	text: string;
	/** Unquoted, unescaped content for strings and quoted identifiers; `text` otherwise. */
	value: string;
	/** UTF-16 offset into the source. */
	offset: number;
	/** 1-based. */
	line: number;
	/** 1-based, in UTF-16 code units from the start of the line. */
	column: number;
	/** Set on a string, quoted identifier, blob or block comment that runs to end of input. */
	unterminated?: boolean;
}

export interface SqlStatement {
	/** Source text from the first token up to, not including, the terminating `;`. */
	text: string;
	/** The statement's tokens without comments and without the terminating `;`. */
	tokens: SqlToken[];
	offset: number;
	line: number;
	column: number;
	/** False when input ended before a top-level `;`. */
	terminated: boolean;
	/** UTF-8 size of `text`, the measure D1's statement limit uses. */
	byteLength: number;
}

// SQLite's keyword list (sqlite.org/lang_keywords.html); SQLite still accepts many as names.
const SQLITE_KEYWORDS = new Set(
	`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
	BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS
	CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE
	DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL
	FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE
	IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST
	LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR
	ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE
	REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS
	SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE
	UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT`.split(/\s+/),
);

const THREE_CHAR_OPERATORS = new Set(["->>"]);
const TWO_CHAR_OPERATORS = new Set(["||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->"]);
const ONE_CHAR_OPERATORS = new Set([..."+-*/%&|~<>=(),."]);
const SINGLE_ONLY_OPERATORS = new Set(
	[...ONE_CHAR_OPERATORS].filter(
		(c) => ![...THREE_CHAR_OPERATORS, ...TWO_CHAR_OPERATORS].some((op) => op.startsWith(c)),
	),
);

const isDigit = (c: string) => c >= "0" && c <= "9";
const isHexDigit = (c: string) => isDigit(c) || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");
// SQLite treats every non-ASCII character as an identifier character.
const isIdentStart = (c: string) =>
	(c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c > "\x7f";
const isIdentPart = (c: string) => isIdentStart(c) || isDigit(c) || c === "$";
// The run of isIdentPart characters from `lastIndex` (code units above 0x7f included, as above):
// one native regex step instead of a call per character, which matters while the code is cold.
const IDENT_PART_RUN = /[A-Za-z0-9_$\u0080-\uffff]*/y;
const identEnd = (sql: string, from: number): number => {
	IDENT_PART_RUN.lastIndex = from;
	IDENT_PART_RUN.test(sql);
	return IDENT_PART_RUN.lastIndex;
};
/** Reads a quoted run starting at `start`; a doubled closing quote is an escaped quote. */
const scanQuoted = (
	sql: string,
	start: number,
	close: string,
	doubling: boolean,
): { end: number; value: string; unterminated: boolean } => {
	let value = "";
	let from = start + 1;
	for (;;) {
		const at = sql.indexOf(close, from);
		if (at === -1) return { end: sql.length, value: value + sql.slice(from), unterminated: true };
		value += sql.slice(from, at);
		if (doubling && sql.charCodeAt(at + 1) === close.charCodeAt(0)) {
			value += close;
			from = at + 2;
			continue;
		}
		return { end: at + 1, value, unterminated: false };
	}
};

const scanNumber = (sql: string, start: number): number => {
	let i = start;
	const digits = () => {
		// SQLite 3.46+ accepts `_` between digits.
		while (isDigit(sql.charAt(i)) || (sql.charAt(i) === "_" && isDigit(sql.charAt(i + 1)))) i++;
	};
	if (sql.charAt(i) === "0" && /[xX]/.test(sql.charAt(i + 1)) && isHexDigit(sql.charAt(i + 2))) {
		i += 2;
		while (isHexDigit(sql.charAt(i)) || (sql.charAt(i) === "_" && isHexDigit(sql.charAt(i + 1))))
			i++;
		return i;
	}
	digits();
	if (sql.charAt(i) === ".") {
		i++;
		digits();
	}
	const e = sql.charAt(i);
	if (e === "e" || e === "E") {
		const sign = sql.charAt(i + 1);
		const next = sign === "+" || sign === "-" ? i + 2 : i + 1;
		if (isDigit(sql.charAt(next))) {
			i = next;
			digits();
		}
	}
	return i;
};

/** Where scanToken's token ends, and its value; filled in place to keep tokenizing allocation-light. */
interface Scan {
	end: number;
	value: string | undefined;
	unterminated: boolean;
}

// Module-level, not closures inside scanToken: it runs once per token of every file.
const set = (out: Scan, kind: SqlTokenKind, end: number): SqlTokenKind => {
	out.end = end;
	return kind;
};
const quoted = (
	out: Scan,
	kind: SqlTokenKind,
	q: { end: number; value: string; unterminated: boolean },
): SqlTokenKind => {
	out.value = q.value;
	out.unterminated = q.unterminated;
	return set(out, kind, q.end);
};

/** Reads the one token that starts at `i` (never whitespace) into `out`; returns its kind. */
const scanToken = (sql: string, i: number, out: Scan): SqlTokenKind => {
	const c = sql.charAt(i);
	const next = sql.charAt(i + 1);
	out.value = undefined;
	out.unterminated = false;

	if (c === "-" && next === "-") {
		const newline = sql.indexOf("\n", i);
		const end = newline === -1 ? sql.length : newline;
		// Keep a CRLF file's `\r` out of the comment text.
		return set(out, "line-comment", sql.charAt(end - 1) === "\r" ? end - 1 : end);
	}
	if (c === "/" && next === "*") {
		const close = sql.indexOf("*/", i + 2);
		if (close === -1) {
			out.unterminated = true;
			return set(out, "block-comment", sql.length);
		}
		return set(out, "block-comment", close + 2);
	}
	if (c === "'") return quoted(out, "string", scanQuoted(sql, i, "'", true));
	if (c === '"' || c === "`" || c === "[") {
		return quoted(out, "quoted-identifier", scanQuoted(sql, i, c === "[" ? "]" : c, c !== "["));
	}
	if ((c === "x" || c === "X") && next === "'")
		return quoted(out, "blob", scanQuoted(sql, i + 1, "'", false));
	if (isDigit(c) || (c === "." && isDigit(next))) return set(out, "number", scanNumber(sql, i));
	if (isIdentStart(c)) {
		const end = identEnd(sql, i + 1);
		const word = sql.slice(i, end);
		return set(out, SQLITE_KEYWORDS.has(word.toUpperCase()) ? "keyword" : "identifier", end);
	}
	if (c === "?") {
		let end = i + 1;
		while (isDigit(sql.charAt(end))) end++;
		return set(out, "parameter", end);
	}
	if ((c === ":" || c === "@" || c === "$") && isIdentPart(next)) {
		return set(out, "parameter", identEnd(sql, i + 1));
	}
	if (c === ";") return set(out, "semicolon", i + 1);
	// No longer operator starts with these (the commonest: commas and parentheses): no slices.
	if (SINGLE_ONLY_OPERATORS.has(c)) return set(out, "operator", i + 1);
	if (THREE_CHAR_OPERATORS.has(sql.slice(i, i + 3))) return set(out, "operator", i + 3);
	if (TWO_CHAR_OPERATORS.has(sql.slice(i, i + 2))) return set(out, "operator", i + 2);
	if (ONE_CHAR_OPERATORS.has(c)) return set(out, "operator", i + 1);
	// Only ASCII gets here: every non-ASCII unit (surrogates included) starts an identifier.
	return set(out, "unknown", i + 1);
};

/** Splits SQLite source into tokens, comments included and whitespace dropped. */
export function tokenizeSql(sql: string): SqlToken[] {
	const tokens: SqlToken[] = [];
	const scan: Scan = { end: 0, value: undefined, unterminated: false };
	let i = 0;
	let line = 1;
	let lineStart = 0;
	while (i < sql.length) {
		const code = sql.charCodeAt(i);
		if (code === 10) {
			line++;
			lineStart = i + 1;
			i++;
			continue;
		}
		if (code === 32 || code === 9 || code === 13 || code === 12 || code === 11 || code === 0xfeff) {
			i++;
			continue;
		}
		const kind = scanToken(sql, i, scan);
		const text = sql.slice(i, scan.end);
		const token: SqlToken = {
			kind,
			text,
			value: scan.value ?? text,
			offset: i,
			line,
			column: i - lineStart + 1,
		};
		if (scan.unterminated) token.unterminated = true;
		tokens.push(token);
		// Newlines inside a token (block comments, strings) still count for the lines after it.
		for (let p = text.indexOf("\n"); p !== -1; p = text.indexOf("\n", p + 1)) {
			line++;
			lineStart = i + p + 1;
		}
		i = scan.end;
	}
	return tokens;
}

export const isCommentToken = (token: SqlToken): boolean =>
	token.kind === "line-comment" || token.kind === "block-comment";

/** True when the token is a bare word (keyword or identifier) equal to one of `words`. */
export const isWord = (token: SqlToken | undefined, ...words: string[]): boolean =>
	token !== undefined &&
	(token.kind === "keyword" || token.kind === "identifier") &&
	words.includes(token.text.toUpperCase());

/** isWord against a set: no argument array per call (the D1 checks ask this of every token). */
export const isWordIn = (token: SqlToken | undefined, words: ReadonlySet<string>): boolean =>
	token !== undefined &&
	(token.kind === "keyword" || token.kind === "identifier") &&
	words.has(token.text.toUpperCase());

/** The name a token denotes when used as an identifier (SQLite also accepts a string there). */
export const identifierName = (token: SqlToken | undefined): string | undefined => {
	if (token === undefined) return undefined;
	if (token.kind === "keyword" || token.kind === "identifier") return token.text;
	if (token.kind === "quoted-identifier" || token.kind === "string") return token.value;
	return undefined;
};

/** Upper-cased bare words of `count` tokens from `start`; other tokens give their text. */
export const keywordsAt = (statement: SqlStatement, count: number, start = 0): string[] =>
	statement.tokens
		.slice(start, start + count)
		.map((t) => (t.kind === "keyword" || t.kind === "identifier" ? t.text.toUpperCase() : t.text));

/** True when the statement's first tokens are exactly these words. */
export const startsWithWords = (statement: SqlStatement, ...words: string[]): boolean =>
	words.every((word, n) => isWord(statement.tokens[n], word));

/** Index of the first bare `word` at parenthesis depth 0, from `from`; -1 when absent. */
export const findTopLevelWord = (tokens: readonly SqlToken[], word: string, from = 0): number => {
	let depth = 0;
	for (let n = from; n < tokens.length; n++) {
		const token = tokens[n];
		if (token === undefined) break;
		if (token.text === "(") depth++;
		else if (token.text === ")") depth = Math.max(0, depth - 1);
		else if (depth === 0 && isWord(token, word)) return n;
	}
	return -1;
};

export const utf8ByteLength = (text: string): number => Buffer.byteLength(text, "utf8");

/** True when the tokens open with CREATE [TEMP|TEMPORARY] TRIGGER. */
const opensTrigger = (tokens: readonly SqlToken[]): boolean =>
	isWord(tokens[0], "CREATE") &&
	(isWord(tokens[1], "TRIGGER") ||
		(isWord(tokens[1], "TEMP", "TEMPORARY") && isWord(tokens[2], "TRIGGER")));

/**
 * Splits SQLite source into statements on top-level `;`. In a CREATE TRIGGER's body a `;` ends
 * the statement only when it follows `; END` (SQLite complete.c sqlite3_complete(): states SEMI,
 * END; wrangler's d1-splitter the same), so `CASE ... END`, `new.end` or `SET end = 1` inside the
 * body keep it whole.
 */
export function splitStatements(sql: string, tokens = tokenizeSql(sql)): SqlStatement[] {
	const statements: SqlStatement[] = [];
	let current: SqlToken[] = [];
	// Decided by the first three tokens, so asked only until the statement has them.
	let trigger = false;
	// In a trigger's body: the last tokens were `;` ("semi"), or `;` then END ("end"); "head"
	// until its BEGIN, where a `;` ends the statement (SQLite refuses it there anyway).
	let tail: "head" | "other" | "semi" | "end" = "head";

	const finish = (terminator: SqlToken | undefined) => {
		const first = current[0];
		const last = current[current.length - 1];
		if (first !== undefined && last !== undefined) {
			const end = terminator?.offset ?? last.offset + last.text.length;
			const text = sql.slice(first.offset, end);
			statements.push({
				text,
				tokens: current,
				offset: first.offset,
				line: first.line,
				column: first.column,
				terminated: terminator !== undefined,
				byteLength: utf8ByteLength(text),
			});
		}
		current = [];
		trigger = false;
		tail = "head";
	};

	for (const token of tokens) {
		if (isCommentToken(token)) continue;
		if (token.kind === "semicolon" && (!trigger || tail === "head" || tail === "end")) {
			finish(token);
			continue;
		}
		current.push(token);
		if (current.length <= 3) trigger = opensTrigger(current);
		if (!trigger) continue;
		if (tail === "head") tail = isWord(token, "BEGIN") ? "other" : "head";
		else if (token.kind === "semicolon") tail = "semi";
		else tail = tail === "semi" && isWord(token, "END") ? "end" : "other";
	}
	finish(undefined);
	return statements;
}

// CLDR's root collation orders `_` before digits before letters, each a distinct primary weight
// with no contraction among them; the "en" locales use it unchanged (only en-US-POSIX tailors it).
const ROOT_RANK = (() => {
	const rank = new Int8Array(128).fill(-1);
	const order = "_0123456789abcdefghijklmnopqrstuvwxyz";
	for (let n = 0; n < order.length; n++) {
		rank[order.charCodeAt(n)] = n;
		const upper = order.charCodeAt(n) - 32;
		if (n > 10) rank[upper] = n;
	}
	return rank;
})();
// Words the rank order decides alone: one case of letters, so no tertiary (case) tie-break applies.
const LOWER_WORD = /^[_0-9a-z]*$/;
const UPPER_WORD = /^[_0-9A-Z]*$/;

/**
 * `a.localeCompare(b, "en")` — one order on every machine, so a schema snapshot written under a
 * da_DK or sv_SE locale matches CI's — without the ICU collator start-up (~5 ms) for the names SQL
 * schemas and finding codes use: `_`, digits, letters of one case. Anything else goes to
 * localeCompare itself, so the order is the same for every input.
 */
export function compareAsLocale(a: string, b: string): number {
	if (!((LOWER_WORD.test(a) && LOWER_WORD.test(b)) || (UPPER_WORD.test(a) && UPPER_WORD.test(b)))) {
		return a.localeCompare(b, "en");
	}
	const length = Math.min(a.length, b.length);
	for (let n = 0; n < length; n++) {
		const d = (ROOT_RANK[a.charCodeAt(n)] as number) - (ROOT_RANK[b.charCodeAt(n)] as number);
		if (d !== 0) return d < 0 ? -1 : 1;
	}
	return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
