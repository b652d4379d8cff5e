import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveWranglerBin } from "../../../ci/cloudflare/wrangler.ts";
import { splitStatements } from "../../../ci/migrations/sql.ts";
import { D1_CASES } from "./d1-cases.ts";

// The verdicts in d1-cases.ts are workerd's own: each case runs on a fresh D1 of wrangler's
// Miniflare, split and batched as `wrangler d1 migrations apply --local` sends a file.
interface D1 {
	prepare(sql: string): { all<T>(): Promise<{ results: T[] }> };
	batch(statements: unknown[]): Promise<unknown[]>;
}
let mf: { getD1Database(binding: string): Promise<D1>; dispose(): Promise<void> } | undefined;
const binding = (n: number) => `CASE${n}`;
const storedBinding = (n: number) => `STORED${n}`;
const STORED =
	"SELECT name, sql FROM sqlite_schema WHERE type IN ('trigger', 'view') ORDER BY name";

beforeAll(async () => {
	const wranglerRequire = createRequire(resolveWranglerBin());
	const { Miniflare, convertV4MiniflareOptions } = await import(
		pathToFileURL(wranglerRequire.resolve("miniflare")).href
	);
	const d1Databases = Object.fromEntries(
		D1_CASES.flatMap((c, n) => [
			[binding(n), `case-${n}`],
			...(c.stored ? [[storedBinding(n), `stored-${n}`]] : []),
		]),
	);
	mf = new Miniflare(convertV4MiniflareOptions({ modules: true, script: "", d1Databases }));
}, 60_000);

afterAll(async () => {
	await mf?.dispose();
});

describe("d1-cases.ts on workerd's D1 (Miniflare)", () => {
	it.each(D1_CASES.map((c, n) => ({ ...c, n })))("$name: D1 $d1", async ({ sql, d1, n }) => {
		const db = await (mf as NonNullable<typeof mf>).getD1Database(binding(n));
		const run = db.batch(splitStatements(sql).map((s) => db.prepare(s.text)));
		if (d1 === "accepts") await run;
		else await expect(run).rejects.toThrow();
	});

	// Each on a database of its own: the stored text after this case's migration alone.
	it.each(D1_CASES.map((c, n) => ({ ...c, n })).filter((c) => c.stored !== undefined))(
		"$name: the views and triggers D1 stores",
		async ({ sql, stored, n }) => {
			const db = await (mf as NonNullable<typeof mf>).getD1Database(storedBinding(n));
			await db.batch(splitStatements(sql).map((s) => db.prepare(s.text)));
			const { results } = await db.prepare(STORED).all<{ name: string; sql: string }>();
			expect(Object.fromEntries(results.map((r) => [r.name, r.sql]))).toEqual(stored);
		},
	);
});
