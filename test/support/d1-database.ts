// One loopback D1 database: a better-sqlite3 connection with D1's rules, atomic requests and
// Time Travel bookmarks backed by byte-exact snapshots.
import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import {
	alterWithDqsStrings,
	type DqsTriggers,
	findCompileLimitRefusal,
	findWideTable,
	installD1Limits,
	isAlterTable,
	makeDqsTriggers,
	restoreTriggers,
	tablesGainingColumns,
	withDqsStrings,
} from "../../ci/migrations/replay.ts";
import { splitStatements } from "../../ci/migrations/sql.ts";
import {
	authorizeStatement,
	byteOffset,
	countParameters,
	D1_MAX_BOUND_PARAMETERS,
	D1_MAX_STATEMENT_BYTES,
	isAllowedName,
	isSignificant,
	type StatementSegment,
	splitSqlSegments,
	type Token,
	tokenizeSql,
} from "./d1-sql.ts";

export interface D1Query {
	sql: string;
	params?: unknown[];
}

export interface D1Meta {
	served_by: string;
	served_by_region: string;
	served_by_primary: boolean;
	timings: { sql_duration_ms: number };
	duration: number;
	changes: number;
	last_row_id: number;
	changed_db: boolean;
	size_after: number;
	rows_read: number;
	rows_written: number;
}

export interface D1StatementResult {
	columns: string[];
	rows: unknown[][];
	meta: D1Meta;
}

export interface DumpOptions {
	no_schema?: boolean;
	no_data?: boolean;
	tables?: string[];
}

// A failed D1 request as the API reports it: HTTP status plus one `{code, message}` error.
export class D1Error extends Error {
	readonly code: number;
	readonly status: number;
	constructor(message: string, options: { code?: number; status?: number } = {}) {
		super(message);
		this.name = "D1Error";
		this.code = options.code ?? 7500;
		this.status = options.status ?? 400;
	}
}

interface BookmarkEntry {
	bookmark: string;
	at: number;
	snapshot: Buffer;
}

interface PreparedStatement {
	statement: Database.Statement;
	tokens: Token[];
	text: string;
	nextSegment: number;
}

const SYNTAX_ERROR = /^(near ".*": syntax error|unrecognized token: .*|incomplete input)$/s;

function openConnection(source: string | Buffer): Database.Database {
	const db = new Database(source as string);
	// D1 always enforces foreign keys; inside a request's transaction a user's OFF is a no-op.
	db.pragma("foreign_keys = ON");
	// workerd setupSecurity() (util/sqlite.c++): the LIKE/GLOB pattern limit, as the replay has it.
	installD1Limits(db);
	return db;
}

// SQLite's primary result code name, e.g. SQLITE_CONSTRAINT for SQLITE_CONSTRAINT_FOREIGNKEY.
const primaryCode = (code: unknown) =>
	typeof code === "string" && code.startsWith("SQLITE_")
		? code.split("_").slice(0, 2).join("_")
		: "SQLITE_ERROR";

function toBindValue(value: unknown): unknown {
	if (value === undefined || value === null) return null;
	if (typeof value === "boolean") return value ? 1 : 0;
	if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") {
		return value;
	}
	if (Array.isArray(value) && value.every((b) => typeof b === "number")) return Buffer.from(value);
	throw new D1Error(
		`D1_TYPE_ERROR: Type '${typeof value}' not supported for value '${String(value)}'`,
	);
}

// D1 returns blobs as arrays of byte values.
const toJsonValue = (value: unknown) =>
	Buffer.isBuffer(value) ? Array.from(value) : typeof value === "bigint" ? Number(value) : value;

export class D1DatabaseState {
	readonly uuid: string;
	readonly name: string;
	readonly createdAt: string;
	private connection: Database.Database;
	private readonly history: BookmarkEntry[] = [];
	private sequence = 0;

	constructor(options: { uuid: string; name: string }) {
		this.uuid = options.uuid;
		this.name = options.name;
		this.createdAt = new Date().toISOString();
		this.connection = openConnection(":memory:");
		this.record(this.connection.serialize());
	}

	get db(): Database.Database {
		return this.connection;
	}

	serialize(): Buffer {
		return this.connection.serialize();
	}

	close(): void {
		if (this.connection.open) this.connection.close();
	}

	sizeBytes(): number {
		const pageCount = this.connection.pragma("page_count", { simple: true }) as number;
		const pageSize = this.connection.pragma("page_size", { simple: true }) as number;
		return pageCount * pageSize;
	}

	tableCount(): number {
		return this.connection
			.prepare(
				"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
			)
			.pluck()
			.get() as number;
	}

	currentBookmark(): string {
		this.sync();
		return this.last().bookmark;
	}

	// The bookmark that was current at `timestamp` (ms since epoch); the oldest one before that.
	bookmarkAt(timestamp: number): string {
		this.sync();
		let found = this.history[0] as BookmarkEntry;
		for (const entry of this.history) if (entry.at <= timestamp) found = entry;
		return found.bookmark;
	}

	hasBookmark(bookmark: string): boolean {
		return this.history.some((e) => e.bookmark === bookmark);
	}

	snapshotAt(bookmark: string): Buffer | undefined {
		this.sync();
		return this.history.find((e) => e.bookmark === bookmark)?.snapshot;
	}

	// Replaces the connection with the exact bytes of `bookmark`; the old handle is closed.
	restore(bookmark: string): { bookmark: string; previous_bookmark: string } {
		const previous = this.currentBookmark();
		const target = this.history.find((e) => e.bookmark === bookmark);
		if (target === undefined) {
			throw new D1Error(`The request is malformed: invalid bookmark: ${bookmark}`, {
				code: 7400,
			});
		}
		this.connection.close();
		this.connection = openConnection(target.snapshot);
		// A restore is itself a new point in time, so it can be undone with `previous_bookmark`.
		this.record(this.connection.serialize());
		return { bookmark, previous_bookmark: previous };
	}

	// Runs every statement of every query in one transaction: all of it commits or none of it.
	// `import`: the SQL of an import (R2 upload + ingest), which D1 runs statement by statement.
	execute(
		queries: D1Query[],
		{ via = "query" }: { via?: "query" | "import" } = {},
	): D1StatementResult[] {
		this.sync();
		const db = this.connection;
		const results: D1StatementResult[] = [];
		let wrote = false;
		db.exec("BEGIN");
		try {
			for (const query of queries) {
				if (typeof query?.sql !== "string") {
					throw new D1Error("The request is malformed: sql is required", { code: 7400 });
				}
				for (const result of this.executeQuery(query, via)) {
					wrote ||= result.meta.changed_db;
					results.push(result);
				}
			}
			try {
				db.exec("COMMIT");
			} catch (error) {
				// A deferred foreign key violation fails COMMIT and leaves the transaction open.
				throw this.toD1Error(error, undefined);
			}
		} finally {
			if (db.inTransaction) db.exec("ROLLBACK");
		}
		if (wrote) this.sync();
		const size = this.sizeBytes();
		for (const r of results) r.meta.size_after = size;
		return results;
	}

	private executeQuery(query: D1Query, via: "query" | "import"): D1StatementResult[] {
		const segments = splitSqlSegments(query.sql);
		const params = (query.params ?? []).map(toBindValue);
		const lastIndex = segments.findLastIndex((s) => !s.empty);
		const results: D1StatementResult[] = [];
		let i = 0;
		while (i < segments.length) {
			const segment = segments[i] as StatementSegment;
			if (segment.empty) {
				i++;
				continue;
			}
			// Triggers rewritten for DQS while this statement runs, put back as written after it.
			const triggers = makeDqsTriggers();
			try {
				const prepared = this.prepare(query.sql, segments, i, { via, triggers });
				const isLast = prepared.nextSegment > lastIndex;
				const wanted = countParameters(prepared.tokens);
				if (wanted > D1_MAX_BOUND_PARAMETERS) {
					throw new D1Error("too many SQL variables: SQLITE_ERROR");
				}
				if (!isLast && wanted > 0) {
					throw new D1Error(
						"When executing multiple SQL statements in a single call, only the last statement can have parameters.",
					);
				}
				const bound = isLast ? params : [];
				if (wanted !== bound.length) {
					throw new D1Error("Wrong number of parameter bindings for SQL query.");
				}
				results.push(this.run(prepared, bound));
				i = prepared.nextSegment;
			} finally {
				restoreTriggers(this.connection, triggers);
			}
		}
		return results;
	}

	// Prepares the statement starting at segment `index`, joining segments while SQLite says the
	// input is incomplete (a `;` inside a trigger body), then applies D1's authorizer rules.
	private prepare(
		sql: string,
		segments: StatementSegment[],
		index: number,
		{ via, triggers }: { via: "query" | "import"; triggers: DqsTriggers },
	): PreparedStatement {
		const first = segments[index] as StatementSegment;
		let end = index;
		for (;;) {
			const original = sql.slice(first.start, (segments[end] as StatementSegment).end);
			// workerd util/sqlite.c++ prepareSql(MULTI) prepares the whole remaining text of the
			// request, and SQLite refuses more than SQLITE_LIMIT_SQL_LENGTH bytes there (workers-sdk#6347).
			// An import is not a /query request: developers.cloudflare.com/d1/best-practices/
			// import-export-data/ ("Statement too long") limits each statement, not the file.
			const limited = via === "import" ? original : sql.slice(first.start);
			if (Buffer.byteLength(limited, "utf8") > D1_MAX_STATEMENT_BYTES) {
				throw new D1Error("statement too long: SQLITE_TOOBIG");
			}
			const { statement, failure, text } = this.prepareWithDqs(original, triggers);
			const tokens = tokenizeSql(text);
			const message = failure instanceof Error ? failure.message : "";
			if (message === "incomplete input" && end + 1 < segments.length) {
				end++;
				continue;
			}
			if (failure !== undefined && SYNTAX_ERROR.test(message)) {
				throw this.toD1Error(failure, { text, tokens });
			}
			const authorization = authorizeStatement(text);
			if (!authorization.ok) throw new D1Error(authorization.message);
			if (failure !== undefined || statement === undefined) {
				throw this.toD1Error(failure, { text, tokens });
			}
			// Limits workerd sets that SQLite checks while compiling (trigger depth, expanded result
			// width), from ci/migrations/d1-rules.ts as the replay applies them.
			const parsed = splitStatements(text)[0];
			const limit = parsed && findCompileLimitRefusal(this.connection, parsed);
			if (limit !== undefined) throw new D1Error(`${limit}: SQLITE_ERROR`);
			return { statement, tokens, text, nextSegment: end + 1 };
		}
	}

	// SQLite's double-quoted string fallback (sqlite.org/quirks.html#dblquote): workerd builds
	// SQLite without SQLITE_DQS (build/BUILD.sqlite3), so D1 reads a double-quoted name that
	// matches no column as a string, in a trigger when it fires (trigger.c codeRowTrigger()).
	// better-sqlite3 is built with DQS=0 and names the token instead: the replay's fallback
	// (replay.ts withDqsStrings) rewrites each as the string SQLite would have read.
	private prepareWithDqs(
		original: string,
		triggers: DqsTriggers,
	): {
		statement: Database.Statement | undefined;
		failure: unknown;
		text: string;
	} {
		const parsed = splitStatements(original)[0];
		const attempt = (text: string) => this.connection.prepare(text);
		if (parsed === undefined) {
			try {
				return { statement: attempt(original), failure: undefined, text: original };
			} catch (error) {
				return { statement: undefined, failure: error, text: original };
			}
		}
		const run = withDqsStrings(this.connection, parsed, { attempt, triggers });
		// Nothing more to rewrite: the failure as SQLite reports it, of the statement as written.
		if (!run.ok) return { statement: undefined, failure: run.error, text: original };
		// Untouched, the statement keeps its text as sent (its offsets are D1's).
		const text = run.strings.length === 0 ? original : run.text;
		return { statement: run.value, failure: undefined, text };
	}

	private run(prepared: PreparedStatement, params: unknown[]): D1StatementResult {
		const { statement } = prepared;
		const started = performance.now();
		let columns: string[] = [];
		let rows: unknown[][] = [];
		let changes = 0;
		try {
			if (statement.reader) {
				columns = statement.columns().map((c) => c.name);
				rows = (statement.raw(true).all(...params) as unknown[][]).map((row) =>
					row.map(toJsonValue),
				);
			} else {
				// ALTER TABLE checks the schema as it runs: the replay's DQS fallback for it (replay.ts).
				const parsed = /\balter\b/i.test(prepared.text)
					? splitStatements(prepared.text)[0]
					: undefined;
				const run = () => statement.run(...params);
				const alter =
					parsed && isAlterTable(parsed.tokens)
						? alterWithDqsStrings(this.connection, parsed, run)
						: undefined;
				if (alter && !alter.ok) throw alter.error;
				changes = (alter ? alter.value : run()).changes;
			}
			// SQLITE_LIMIT_COLUMN (workerd setupSecurity()) for ALTER TABLE ADD COLUMN, with SQLite's wording.
			const wide = findWideTable(this.connection, tablesGainingColumns(prepared.text));
			if (wide !== undefined) {
				throw new D1Error(`too many columns on sqlite_altertab_${wide}: SQLITE_ERROR`);
			}
		} catch (error) {
			throw this.toD1Error(error, prepared);
		}
		const duration = performance.now() - started;
		const lastRowId = this.connection.prepare("SELECT last_insert_rowid()").pluck().get();
		return {
			columns,
			rows,
			meta: {
				served_by: "v3-prod",
				served_by_region: "WEUR",
				served_by_primary: true,
				timings: { sql_duration_ms: duration },
				duration,
				changes,
				last_row_id: Number(lastRowId),
				changed_db: !statement.readonly,
				size_after: 0,
				rows_read: rows.length,
				rows_written: changes,
			},
		};
	}

	// Formats a SQLite failure the way D1 does: `<errmsg>[ at offset N]: <PRIMARY_CODE>`.
	private toD1Error(error: unknown, at: { text: string; tokens: Token[] } | undefined): D1Error {
		if (error instanceof D1Error) return error;
		if (!(error instanceof Error)) return new D1Error(String(error));
		if (error instanceof RangeError || error instanceof TypeError) {
			return new D1Error(error.message);
		}
		const offset = at === undefined ? undefined : this.errorOffset(error.message, at);
		const where = offset === undefined ? "" : ` at offset ${offset}`;
		return new D1Error(
			`${error.message}${where}: ${primaryCode((error as { code?: unknown }).code)}`,
		);
	}

	// Recovers sqlite3_error_offset(), which better-sqlite3 does not expose: for a syntax error,
	// the first token whose prefix reproduces the error; for a missing name, its first mention.
	private errorOffset(message: string, at: { text: string; tokens: Token[] }): number | undefined {
		const significant = at.tokens.filter(isSignificant);
		if (/^(near ".*": syntax error|unrecognized token: .*)$/s.test(message)) {
			for (const token of significant.slice(0, 5000)) {
				try {
					this.connection.prepare(at.text.slice(0, token.end));
				} catch (error) {
					if (error instanceof Error && error.message === message) {
						return byteOffset(at.text, token.start);
					}
				}
			}
			return undefined;
		}
		const missing = /^no such (?:column|function): (.+)$/.exec(message)?.[1];
		if (missing === undefined) return undefined;
		const name = missing.split(".").pop()?.toLowerCase();
		const token = significant.find(
			(t) => (t.kind === "word" || t.kind === "ident") && t.text.toLowerCase() === name,
		);
		return token === undefined ? undefined : byteOffset(at.text, token.start);
	}

	private last(): BookmarkEntry {
		return this.history[this.history.length - 1] as BookmarkEntry;
	}

	// Records a new bookmark when the bytes differ from the last one (also catches direct seeding).
	private sync(): void {
		const bytes = this.connection.serialize();
		if (!bytes.equals(this.last().snapshot)) this.record(bytes);
	}

	private record(snapshot: Buffer): void {
		this.sequence++;
		const digest = createHash("sha256").update(snapshot).digest("hex").slice(0, 32);
		const bookmark = [
			this.sequence.toString(16).padStart(8, "0"),
			snapshot.length.toString(16).padStart(8, "0"),
			"00000000",
			digest,
		].join("-");
		this.history.push({ bookmark, at: Date.now(), snapshot });
	}
}

// SQL text that recreates the database at `snapshot` (D1 export format: schema, then rows).
export function dumpSnapshot(snapshot: Buffer, options: DumpOptions = {}): string {
	const db = new Database(snapshot);
	try {
		return dumpDatabase(db, options);
	} finally {
		db.close();
	}
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

function dumpDatabase(db: Database.Database, options: DumpOptions): string {
	const lines = ["PRAGMA defer_foreign_keys=TRUE;"];
	const objects = db
		.prepare(
			"SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid",
		)
		.all() as { type: string; name: string; tbl_name: string; sql: string }[];
	const virtualTables = objects
		.filter((o) => o.type === "table" && /^CREATE\s+VIRTUAL/i.test(o.sql))
		.map((o) => o.name);
	const wanted = (table: string) =>
		isAllowedName(table) &&
		!table.startsWith("sqlite_") &&
		!virtualTables.some((v) => table.startsWith(`${v}_`)) &&
		(options.tables === undefined || options.tables.length === 0 || options.tables.includes(table));
	for (const object of objects.filter((o) => o.type === "table" && wanted(o.name))) {
		if (!options.no_schema) lines.push(`${object.sql};`);
		if (options.no_data || virtualTables.includes(object.name)) continue;
		const columns = (
			db.prepare(`PRAGMA table_xinfo(${quoteIdent(object.name)})`).all() as {
				name: string;
				hidden: number;
			}[]
		)
			.filter((c) => c.hidden === 0)
			.map((c) => c.name);
		const select = `SELECT ${columns.map((c) => `quote(${quoteIdent(c)})`).join(", ")} FROM ${quoteIdent(object.name)}`;
		const columnList = columns.map(quoteIdent).join(",");
		for (const row of db.prepare(select).raw(true).iterate() as Iterable<string[]>) {
			lines.push(
				`INSERT INTO ${quoteIdent(object.name)} (${columnList}) VALUES(${row.join(",")});`,
			);
		}
	}
	const hasSequence = objects.some((o) => o.name === "sqlite_sequence");
	if (hasSequence && !options.no_data) {
		const sequences = db
			.prepare("SELECT quote(name), quote(seq) FROM sqlite_sequence")
			.raw(true)
			.all() as string[][];
		const kept = sequences.filter(([name]) =>
			wanted(String(name).slice(1, -1).replaceAll("''", "'")),
		);
		if (kept.length > 0) {
			lines.push("DELETE FROM sqlite_sequence;");
			for (const [name, seq] of kept)
				lines.push(`INSERT INTO "sqlite_sequence" VALUES(${name},${seq});`);
		}
	}
	if (!options.no_schema) {
		for (const object of objects) {
			if (object.type === "table" || !wanted(object.tbl_name)) continue;
			lines.push(`${object.sql};`);
		}
	}
	return `${lines.join("\n")}\n`;
}
