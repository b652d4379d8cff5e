// /api/health as the health contract says: {status, version, schema: {head, expected}, db}, 200
// when the database answers and its newest migration is the one the build expects.
import { readdirSync } from "node:fs";
import { expect, test } from "@playwright/test";

const newest = readdirSync("migrations")
	.filter((f) => /^\d{4}_.+\.sql$/.test(f))
	.sort()
	.at(-1);

test("the health endpoint reports the build and the migrated schema", async ({ request }) => {
	const response = await request.get("/api/health");
	expect(response.status()).toBe(200);
	expect(response.headers()["cache-control"]).toBe("no-store");
	const body = await response.json();
	expect(body).toMatchObject({
		status: "ok",
		db: "ok",
		schema: { head: newest, expected: newest },
	});
	expect(typeof body.version).toBe("string");
	expect(body.version.length).toBeGreaterThan(0);
});
