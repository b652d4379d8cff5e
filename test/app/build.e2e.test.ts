// End to end: build the example app through `workers-pipeline build --no-cache`, serve a copy of
// the build with `wrangler dev` against a local D1 migrated with the real migrations/, and check
// the health endpoint and the home page for real. The build is shared with test/deploy (_app.ts).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_STAMP } from "../../ci/steps/build.ts";
import {
	BUILD_TIMEOUT_MS,
	createLocalApp,
	currentVersion,
	getHealth,
	type LocalApp,
	MIGRATIONS,
	NEWEST_MIGRATION,
	READY_TIMEOUT_MS,
	REPO,
	type SharedBuild,
} from "./_app.ts";

const filesUnder = (dir: string): string[] =>
	existsSync(dir)
		? readdirSync(dir, { withFileTypes: true, recursive: true })
				.filter((e) => e.isFile())
				.map((e) => path.join(e.parentPath, e.name))
		: [];

// From migrations/0008_seed_demo_content.sql.
const SEEDED = { title: "Notes on the engine", project: "Analytical Engine", views: "42" };
const SEEDED_DRAFT = "Draft: COBOL";

describe("example app: workers-pipeline build, served by wrangler dev on a migrated local D1", () => {
	let app: LocalApp & { build: SharedBuild };
	let baseUrl = "";
	let version = "";

	beforeAll(
		async () => {
			app = await createLocalApp("this-run");
			await app.migrateLocal();
			// What deploy passes the Worker (ci/health/): the migration this build needs.
			baseUrl = await app.serve({ vars: { WORKERS_PIPELINE_EXPECTED_HEAD: NEWEST_MIGRATION } });
		},
		BUILD_TIMEOUT_MS + READY_TIMEOUT_MS + 300_000,
	);

	afterAll(async () => {
		await app?.dispose();
	}, 60_000);

	it("builds through the CLI into .open-next/ with a stamp of the current version", () => {
		const { build } = app;
		expect(build.record.code).toBe(0);
		const worker = path.join(REPO, ".open-next", "worker.js");
		expect(existsSync(worker)).toBe(true);
		expect(statSync(worker).size).toBeGreaterThan(0);

		expect(build.stamp.version).toBe(currentVersion());
		expect(build.stamp.upload.rawBytes).toBeGreaterThan(0);
		expect(build.stamp.upload.gzipBytes).toBeGreaterThan(0);
		expect(build.stamp.upload.gzipBytes).toBeLessThan(build.stamp.upload.rawBytes);
		expect(build.stamp.upload.files).toBeGreaterThan(0);
		// The copy being served is that build.
		const copied = JSON.parse(readFileSync(path.join(app.dir, BUILD_STAMP), "utf8"));
		expect(copied).toEqual(build.stamp);

		const summary = build.record.stdout;
		expect(summary).toMatch(/build/);
		expect(summary).toMatch(new RegExp(`built ${build.stamp.version.slice(0, 12)}`));
		expect(summary).toMatch(/\d+ KiB raw/);
		expect(summary).toMatch(/\d+ KiB gzip/);
	});

	it("applies the real migrations to the local D1", async () => {
		const listed = await app.wrangler([
			"d1",
			"execute",
			"DB",
			"--local",
			"--persist-to",
			app.persistDir,
			"--command",
			"SELECT name FROM d1_migrations ORDER BY id",
			"--json",
		]);
		const rows = (JSON.parse(listed.stdout) as { results: { name: string }[] }[])[0]?.results;
		expect(rows?.map((r) => r.name)).toEqual(MIGRATIONS);
	});

	it("reports healthy with the running version id and the expected migration from the Worker var", async () => {
		const health = await getHealth(baseUrl);
		expect(health.status, JSON.stringify(health.body)).toBe(200);
		expect(health.cacheControl).toContain("no-store");
		// wrangler dev gives the version metadata binding a random id (miniflare's
		// src/plugins/version-metadata): a UUID, the same on every request of one server.
		version = String(health.body.version);
		expect(version).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
		expect(version).not.toBe(app.build.stamp.version);
		expect(health.body).toEqual({
			status: "ok",
			version,
			schema: { head: NEWEST_MIGRATION, expected: NEWEST_MIGRATION },
			db: "ok",
		});
		expect((await getHealth(baseUrl)).body.version).toBe(version);
	});

	it("no longer inlines a version or an expected migration into the build", () => {
		const worker = readFileSync(path.join(app.dir, ".open-next", "worker.js"), "utf8");
		expect(worker).not.toContain("WORKERS_PIPELINE_EXPECTED_MIGRATION");
		const server = filesUnder(path.join(app.dir, ".open-next", "server-functions"))
			.filter((file) => file.endsWith(".js"))
			.some((file) => readFileSync(file, "utf8").includes(app.build.stamp.version));
		expect(server).toBe(false);
	});

	it("renders the seeded published content with its project and views, not drafts", async () => {
		const response = await fetch(`${baseUrl}/`);
		const html = await response.text();
		expect(response.status).toBe(200);
		expect(html).toContain(SEEDED.title);
		expect(html).toContain(SEEDED.project);
		expect(html).toContain(`<td>${SEEDED.views}</td>`);
		expect(html).not.toContain(SEEDED_DRAFT);
	});

	it("reports 503 with the reason once the newest ledger row is gone", async () => {
		await app.sql("DELETE FROM d1_migrations WHERE id = (SELECT MAX(id) FROM d1_migrations)");
		const health = await getHealth(baseUrl);
		expect(health.status, JSON.stringify(health.body)).toBe(503);
		expect(health.cacheControl).toContain("no-store");
		const previous = MIGRATIONS.at(-2);
		expect(health.body).toEqual({
			status: "error",
			version,
			db: "ok",
			schema: { head: previous, expected: NEWEST_MIGRATION },
			reason: `schema behind: head ${previous}, expected ${NEWEST_MIGRATION}`,
		});
	});
});
