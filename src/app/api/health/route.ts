// GET /api/health: which build is serving, and whether its database schema is at least the one
// the build was made for. The deploy step polls it; 200 only when the database answers and the
// newest applied migration is not older than the newest migration file at build time.
import { getCloudflareContext } from "@opennextjs/cloudflare";

export const dynamic = "force-dynamic";

/** Inlined by next.config.ts at build time. */
const VERSION = process.env.WORKERS_PIPELINE_VERSION || "dev";
const EXPECTED = process.env.WORKERS_PIPELINE_EXPECTED_MIGRATION || null;
const LEDGER_TABLE = process.env.WORKERS_PIPELINE_MIGRATIONS_TABLE || "d1_migrations";

type Health = {
	status: "ok" | "error";
	version: string;
	schema: { head: string | null; expected: string | null };
	db: "ok" | "error";
	reason?: string;
};

/** The part of a D1 binding this route uses. */
type D1Like = {
	prepare(sql: string): { first<T>(): Promise<T | null> };
};

function isD1(value: unknown): value is D1Like {
	return (
		typeof value === "object" &&
		value !== null &&
		typeof (value as { prepare?: unknown }).prepare === "function"
	);
}

function migrationNumber(name: string): number | null {
	const match = /^(\d+)_/.exec(name);
	return match?.[1] ? Number.parseInt(match[1], 10) : null;
}

function message(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}

/** The newest applied migration, or null when the ledger is empty or does not exist yet. */
async function readHead(db: D1Like): Promise<string | null> {
	try {
		const row = await db
			.prepare(`SELECT name FROM "${LEDGER_TABLE}" ORDER BY id DESC LIMIT 1`)
			.first<{ name: unknown }>();
		return typeof row?.name === "string" ? row.name : null;
	} catch (error) {
		// A database that has never been migrated has no ledger table: reachable, nothing applied.
		if (/no such table/i.test(message(error))) return null;
		throw error;
	}
}

function judge(head: string | null, expected: string | null): string | undefined {
	if (expected === null) return undefined;
	if (head === null) return "no migrations applied";
	const headNumber = migrationNumber(head);
	const expectedNumber = migrationNumber(expected);
	if (headNumber === null || expectedNumber === null) {
		return `cannot compare migrations: head ${head}, expected ${expected}`;
	}
	if (headNumber < expectedNumber) return `schema behind: head ${head}, expected ${expected}`;
	return undefined;
}

function respond(health: Health): Response {
	return Response.json(health, {
		status: health.status === "ok" ? 200 : 503,
		headers: { "Cache-Control": "no-store" },
	});
}

export async function GET(): Promise<Response> {
	const schema: Health["schema"] = { head: null, expected: EXPECTED };
	let head: string | null;
	try {
		const { env } = await getCloudflareContext({ async: true });
		const db: unknown = (env as unknown as Record<string, unknown>).DB;
		if (!isD1(db)) throw new Error("the DB binding is missing");
		head = await readHead(db);
	} catch (error) {
		return respond({
			status: "error",
			version: VERSION,
			schema,
			db: "error",
			reason: `database unreachable: ${message(error)}`,
		});
	}
	schema.head = head;
	const reason = judge(head, EXPECTED);
	return respond(
		reason === undefined
			? { status: "ok", version: VERSION, schema, db: "ok" }
			: { status: "error", version: VERSION, schema, db: "ok", reason },
	);
}
