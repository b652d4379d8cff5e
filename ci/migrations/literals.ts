// SQL literals for the statements workers-pipeline writes itself (ledger rows, fences, lookups).
// SQLite quotes identifiers with "…" and strings with '…', doubling the quote inside.

/** `name` → `"name"`, safe for any table or column name. */
export const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A string literal; null and undefined become NULL. */
export const sqlString = (value: string | null | undefined): string =>
	value === null || value === undefined ? "NULL" : `'${value.replace(/'/g, "''")}'`;

/** A rounded integer literal; null, undefined, NaN and ±Infinity become NULL. */
export const sqlInteger = (value: number | null | undefined): string =>
	value === null || value === undefined || !Number.isFinite(value)
		? "NULL"
		: String(Math.round(value));
