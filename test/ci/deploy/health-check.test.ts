// Deploy's health verdict: one probe judged against the contract, and "holds, not blinks" over a
// real local HTTP server whose answers a test scripts.
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
	holdInterval,
	isDefiniteNoRoute,
	judgeProbe,
	noRouteSettled,
	streakHolds,
	VERSION_OVERRIDE_HEADER,
	waitForHealth,
} from "../../../ci/deploy/health-check.ts";

const V = "11111111-2222-4333-8444-555555555555";
const OTHER = "99999999-2222-4333-8444-555555555555";
const okBody = (version = V, expected: string | null = "0002_b.sql") => ({
	status: "ok",
	version,
	schema: { head: "0002_b.sql", expected },
	db: "ok",
});

describe("judgeProbe()", () => {
	it.each([
		{ case: "healthy", status: 200, body: okBody(), good: true, noRoute: false, reason: "healthy" },
		{
			case: "another version answered",
			status: 200,
			body: okBody(OTHER),
			good: false,
			noRoute: false,
			reason: `version ${OTHER} answered, not ${V}`,
		},
		{
			case: "503 with the app's reason",
			status: 503,
			body: { ...okBody(), status: "error", reason: "schema behind: head a, expected b" },
			good: false,
			noRoute: false,
			reason: "HTTP 503: schema behind: head a, expected b",
		},
		{
			case: "200 but status error",
			status: 200,
			body: { ...okBody(), status: "error" },
			good: false,
			noRoute: false,
			reason: "HTTP 200",
		},
		{
			case: "the expected-head var did not arrive",
			status: 200,
			body: okBody(V, null),
			good: false,
			noRoute: false,
			reason:
				"the Worker expects no migration, not 0002_b.sql: it did not get the WORKERS_PIPELINE_EXPECTED_HEAD var",
		},
		{
			case: "404",
			status: 404,
			body: "Not Found",
			good: false,
			noRoute: true,
			reason: /no health route \(HTTP 404\)/,
		},
		{
			case: "an HTML page",
			status: 200,
			body: "<!doctype html>",
			good: false,
			noRoute: true,
			reason: /without the health contract's JSON/,
		},
		{
			case: "Cloudflare's own error page (the platform, not the app)",
			status: 404,
			body: "error code: 1042",
			good: false,
			noRoute: false,
			reason: /^HTTP 404 from Cloudflare \(error 1042\), not from the app/,
		},
		{
			case: "no version in the body",
			status: 503,
			body: { status: "error", version: null, reason: "no version metadata: add …" },
			good: false,
			noRoute: false,
			reason: "the health body has no version: no version metadata: add …",
		},
	])("$case", ({ status, body, good, noRoute, reason }) => {
		const verdict = judgeProbe(status, body, { versionId: V, expectedHead: "0002_b.sql" });
		expect(verdict.good).toBe(good);
		expect(verdict.noRoute === true).toBe(noRoute);
		if (typeof reason === "string") expect(verdict.reason).toBe(reason);
		else expect(verdict.reason).toMatch(reason);
	});
});

describe("streakHolds()", () => {
	const policy = { timeoutMs: 10_000, probes: 3, windowMs: 1000 };
	it.each([
		{ count: 3, span: 1000, holds: true },
		{ count: 3, span: 999, holds: false },
		{ count: 2, span: 5000, holds: false },
		{ count: 5, span: 2000, holds: true },
	])("$count probes over $span ms → $holds", ({ count, span, holds }) => {
		expect(streakHolds({ count, startedAt: 0 }, span, policy)).toBe(holds);
	});
	it("spreads the window over the probes", () => {
		expect(holdInterval({ timeoutMs: 1, probes: 3, windowMs: 1000 })).toBe(500);
		expect(holdInterval({ timeoutMs: 1, probes: 1, windowMs: 0 })).toBe(100);
	});
});

describe("noRouteSettled()", () => {
	const policy = { timeoutMs: 60_000, probes: 3, windowMs: 1000 };
	it.each([
		{ count: 3, span: 5000, afterMs: 5000, settled: true },
		{ count: 3, span: 4999, afterMs: 5000, settled: false },
		{ count: 2, span: 9000, afterMs: 5000, settled: false },
		// The propagation allowance never shortens the health window.
		{ count: 3, span: 999, afterMs: 0, settled: false },
		{ count: 3, span: 1000, afterMs: 0, settled: true },
	])(
		"$count answers over $span ms (after $afterMs) → $settled",
		({ count, span, afterMs, settled }) => {
			expect(noRouteSettled({ count, startedAt: 0 }, span, policy, afterMs)).toBe(settled);
		},
	);
});

describe("isDefiniteNoRoute()", () => {
	it.each([
		{ status: 404, body: "Not Found", definite: true },
		{ status: 405, body: "", definite: true },
		{ status: 200, body: "<!doctype html>", definite: true },
		{ status: 302, body: "", definite: true },
		// Behind Access, a WAF rule or a rate limit: may change, and is no missing route.
		{ status: 401, body: "", definite: false },
		{ status: 403, body: "", definite: false },
		{ status: 429, body: "", definite: false },
		{ status: 503, body: "starting", definite: false },
		{ status: 404, body: "error code: 1042", definite: false },
		{ status: 200, body: okBody(OTHER), definite: false },
	])("HTTP $status $body → $definite", ({ status, body, definite }) => {
		expect(isDefiniteNoRoute(status, judgeProbe(status, body, { versionId: V }))).toBe(definite);
	});
});

describe("waitForHealth()", () => {
	let server: Server | undefined;
	afterEach(async () => {
		await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
		server = undefined;
	});

	/** A health server answering with `answer(n)` for the n-th request (0-based); "drop" closes the connection. */
	async function serve(
		answer: (
			n: number,
			headers: Record<string, unknown>,
		) => { status: number; body: unknown } | "drop",
	) {
		let n = 0;
		server = createServer((req, res) => {
			const reply = answer(n++, req.headers);
			if (reply === "drop") {
				req.socket.destroy();
				return;
			}
			const { status, body } = reply;
			const text = typeof body === "string" ? body : JSON.stringify(body);
			res.writeHead(status, {
				"content-type": typeof body === "string" ? "text/plain" : "application/json",
			});
			res.end(text);
		});
		await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", () => resolve()));
		const address = server.address();
		const port = typeof address === "object" && address ? address.port : 0;
		return { url: `http://127.0.0.1:${port}/api/health`, count: () => n };
	}
	const policy = { timeoutMs: 4000, probes: 3, windowMs: 300 };
	const bad = { status: 503, body: { ...okBody(), status: "error", reason: "db down" } };

	it("passes when the answers stay good for N probes over the window", async () => {
		const { url } = await serve(() => ({ status: 200, body: okBody() }));
		const health = await waitForHealth({ ...policy, url, expect: { versionId: V } });
		expect(health.ok).toBe(true);
		expect(health.good).toBe(3);
		expect(health.reason).toMatch(/^healthy: 3 good probes in a row/);
	});

	it("fails a flapping endpoint that is good on every other probe", async () => {
		const { url } = await serve((n) => (n % 2 === 1 ? { status: 200, body: okBody() } : bad));
		const health = await waitForHealth({
			...policy,
			timeoutMs: 2500,
			url,
			expect: { versionId: V },
		});
		expect(health.ok).toBe(false);
		expect(health.good).toBeGreaterThan(0);
		// The last probe before the deadline is either (how many fit depends on the machine's load):
		// a failure, or a good one that starts a streak of one, never more.
		expect(health.reason).toMatch(
			/^timed out after 3 s: (?:HTTP 503: db down|healthy 1 time\(s\) in a row, holding) \(\d+ good of \d+ probes; healthy needs 3 in a row/,
		);
	});

	it("fails one good probe among failures (the old rule passed it)", async () => {
		const { url } = await serve((n) => (n === 1 ? { status: 200, body: okBody() } : bad));
		const health = await waitForHealth({
			...policy,
			timeoutMs: 2000,
			url,
			expect: { versionId: V },
		});
		expect(health.ok).toBe(false);
		expect(health.good).toBe(1);
	});

	it("restarts the streak after a failure and passes once it holds", async () => {
		const { url } = await serve((n) => (n === 2 ? bad : { status: 200, body: okBody() }));
		const health = await waitForHealth({ ...policy, url, expect: { versionId: V } });
		expect(health.ok).toBe(true);
		expect(health.attempts).toBe(6);
	});

	describe("an app without a health route", () => {
		// Short stand-ins for the health window and the propagation allowance; the timeout is far off.
		const patient = { timeoutMs: 30_000, probes: 3, windowMs: 300, noRouteAfterMs: 600 };
		it.each([
			{ case: "404 from the new version", answer: { status: 404, body: "Not Found" } },
			{ case: "a catch-all page", answer: { status: 200, body: "<!doctype html><h1>Home</h1>" } },
		])(
			"decides early when $case answers the same each time: HEALTH_NO_ROUTE, no timeout",
			async ({ answer }) => {
				const { url } = await serve(() => answer);
				const health = await waitForHealth({ ...patient, url, expect: { versionId: V } });
				expect(health).toMatchObject({ ok: false, noRoute: true, lastStatus: answer.status });
				expect(health.reason).toMatch(/^the same answer [3-9] times in a row over \d+(\.\d)? s: /);
				expect(health.reason).not.toContain("timed out");
			},
		);

		it("still passes a version that answers 503, then briefly 404 (the old version still routed), then healthy", async () => {
			const script = [
				{ status: 503, body: "starting" },
				{ status: 404, body: "Not Found" },
				{ status: 404, body: "Not Found" },
			];
			let from = 0; // Each run below replays the script from its start.
			const { url, count } = await serve(
				(n) => script[n - from] ?? { status: 200, body: okBody() },
			);
			const policy = { ...patient, probes: 2, url, expect: { versionId: V } };
			// Two identical 404s over 1 s: settled with no propagation allowance, not within 5 s of one.
			const hasty = await waitForHealth({ ...policy, noRouteAfterMs: 0 });
			expect(hasty).toMatchObject({ ok: false, noRoute: true });
			from = count();
			const health = await waitForHealth({ ...policy, noRouteAfterMs: 5_000 });
			expect(health.ok, health.reason).toBe(true);
			expect(health.attempts).toBe(script.length + 2);
		});

		// Two probes in 1.6 s: the same no-route answer twice would settle (the first row shows it).
		it.each([
			{ case: "the same 404 (control)", other: { status: 404, body: "Not Found" }, early: true },
			{ case: "a 503 in between", other: { status: 503, body: "starting" }, early: false },
			{ case: "no answer in between", other: "drop" as const, early: false },
			{
				case: "another version's health in between",
				other: { status: 200, body: okBody(OTHER) },
				early: false,
			},
			{ case: "a different page in between", other: { status: 404, body: "Other" }, early: false },
		])("does not decide early with $case", async ({ other, early }) => {
			const { url } = await serve((n) =>
				n % 2 === 0 ? { status: 404, body: "Not Found" } : other,
			);
			const health = await waitForHealth({
				timeoutMs: 1600,
				probes: 2,
				windowMs: 300,
				noRouteAfterMs: 400,
				url,
				expect: { versionId: V },
			});
			expect(health.ok).toBe(false);
			expect(health.reason.startsWith("timed out")).toBe(!early);
		});

		it("never decides early on Cloudflare's own error page", async () => {
			const { url } = await serve(() => ({ status: 404, body: "error code: 1042" }));
			const health = await waitForHealth({
				timeoutMs: 1600,
				probes: 2,
				windowMs: 300,
				noRouteAfterMs: 400,
				url,
				expect: { versionId: V },
			});
			expect(health).toMatchObject({ ok: false, noRoute: false });
			expect(health.reason).toMatch(
				/^timed out after 2 s: HTTP 404 from Cloudflare \(error 1042\)/,
			);
		});
	});

	it("sends the version-override header when asked", async () => {
		const seen: unknown[] = [];
		const { url } = await serve((_n, headers) => {
			seen.push(headers[VERSION_OVERRIDE_HEADER.toLowerCase()]);
			return { status: 200, body: okBody() };
		});
		const header = `app="${V}"`;
		await waitForHealth({
			...policy,
			probes: 1,
			windowMs: 0,
			url,
			expect: { versionId: V },
			headers: { [VERSION_OVERRIDE_HEADER]: header },
		});
		expect(seen).toEqual([header]);
	});

	it("throws when the signal aborts, and probes no more", async () => {
		const controller = new AbortController();
		const { url, count } = await serve(() => {
			controller.abort(new Error("SIGINT"));
			return bad;
		});
		await expect(
			waitForHealth({ ...policy, url, expect: { versionId: V }, signal: controller.signal }),
		).rejects.toThrow("SIGINT");
		expect(count()).toBe(1);
	});
});

describe("judgeProbe() during a traffic split", () => {
	it.each([
		{ case: "the old version, healthy", body: okBody(OTHER, "0001_a.sql"), good: true },
		{ case: "the new version, healthy", body: okBody(V), good: true },
		{
			case: "the old version, unhealthy",
			body: { ...okBody(OTHER), status: "error" },
			good: false,
		},
		{ case: "a third version", body: okBody("33333333-2222-4333-8444-555555555555"), good: false },
	])("$case → $good", ({ body, good }) => {
		const status = body.status === "ok" ? 200 : 503;
		expect(
			judgeProbe(status, body, { versionId: V, expectedHead: "0002_b.sql", alsoAccept: [OTHER] })
				.good,
		).toBe(good);
	});
});

describe("judgeProbe() by deployment token (preview)", () => {
	const TOKEN = "0123456789ab-5b0e7f0c-8f8e-4f62-9b0c-2f4f3c0f6a11";
	const withToken = (deployment?: string, status = "ok") => ({
		...okBody("whatever-id-the-preview-reports"),
		status,
		...(deployment === undefined ? {} : { deployment }),
	});
	it.each([
		{ case: "the token, healthy", body: withToken(TOKEN), good: true, reason: /healthy/ },
		{
			case: "another run's token",
			body: withToken("other-token"),
			good: false,
			reason: /deployment other-token answered, not 0123/,
		},
		{
			case: "no token at all",
			body: withToken(),
			good: false,
			reason: /no deployment token.*WORKERS_PIPELINE_DEPLOYMENT/,
		},
		{
			case: "the token, unhealthy",
			body: withToken(TOKEN, "error"),
			good: false,
			reason: /HTTP 503/,
		},
		{
			case: "the token, stale head",
			body: { ...withToken(TOKEN), schema: { head: "0001_a.sql", expected: "0001_a.sql" } },
			good: false,
			reason: /expects 0001_a.sql, not 0002_b.sql/,
		},
	])("$case → $good", ({ body, good, reason }) => {
		const status = body.status === "ok" ? 200 : 503;
		const verdict = judgeProbe(status, body, { deployment: TOKEN, expectedHead: "0002_b.sql" });
		expect(verdict.good).toBe(good);
		expect(verdict.reason).toMatch(reason);
	});
	it("does not care which version id a Preview reports", () => {
		expect(judgeProbe(200, withToken(TOKEN), { deployment: TOKEN }).good).toBe(true);
		expect(judgeProbe(200, withToken(TOKEN), { versionId: V }).good).toBe(false);
	});
});
