import Database from "better-sqlite3";
import { D1ApiError } from "../errors.ts";
import { splitStatements } from "./sql.ts";

export interface StatementResult {
	results: Record<string, unknown>[];
	success: boolean;
	meta?: {
		changes?: number;
		duration?: number;
		last_row_id?: number;
		rows_read?: number;
		rows_written?: number;
	};
}

export interface QueryOptions {
	params?: unknown[];
	write?: boolean;
}

/** The one seam migrate talks to a database through: D1 over REST, or better-sqlite3 in memory. */
export interface SqlExecutor {
	/** Runs one request; several statements run atomically, one result per statement. */
	query(sql: string, options?: QueryOptions): Promise<StatementResult[]>;
	/**
	 * Runs SQL too large for one request atomically, without per-statement results (D1's import
	 * API: developers.cloudflare.com/d1/best-practices/import-export-data). Optional.
	 */
	importSql?(sql: string): Promise<{ finalBookmark?: string }>;
}

/**
 * better-sqlite3 with D1's request semantics (developers.cloudflare.com/d1/worker-api: a
 * multi-statement request is one transaction; foreign keys always on; only the last statement
 * binds parameters). A refused statement throws a definite D1ApiError (HTTP 400), as D1 does.
 */
export class SqliteExecutor implements SqlExecutor {
	readonly db: Database.Database;
	#requests = 0;

	constructor(db: Database.Database = new Database(":memory:")) {
		this.db = db;
		this.db.pragma("foreign_keys = ON");
	}

	get requestCount(): number {
		return this.#requests;
	}

	async query(sql: string, options: QueryOptions = {}): Promise<StatementResult[]> {
		this.#requests++;
		const statements = splitStatements(sql).filter((s) => s.tokens.length > 0);
		const params = options.params ?? [];
		const run = this.db.transaction(() =>
			statements.map((statement, index) => {
				const prepared = this.db.prepare(statement.text);
				const bound = index === statements.length - 1 ? params : [];
				if (prepared.reader) {
					const rows = prepared.all(...bound) as Record<string, unknown>[];
					return { results: rows, success: true, meta: { rows_read: rows.length, changes: 0 } };
				}
				const info = prepared.run(...bound);
				return {
					results: [],
					success: true,
					meta: {
						changes: info.changes,
						last_row_id: Number(info.lastInsertRowid),
						rows_written: info.changes,
					},
				};
			}),
		);
		try {
			return run();
		} catch (error) {
			throw new D1ApiError(`D1 query failed (HTTP 400) [7500]: ${(error as Error).message}`, {
				status: 400,
				d1Code: 7500,
				cause: error,
			});
		}
	}

	/** The same atomic transaction as one request: SQLite has no request size limit. */
	async importSql(sql: string): Promise<{ finalBookmark?: string }> {
		await this.query(sql, { write: true });
		return {};
	}

	close(): void {
		this.db.close();
	}
}
