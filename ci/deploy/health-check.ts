// Deploy's side of the health contract (ci/health/): probe the app's health route and decide
// whether a version is healthy. Healthy means it HOLDS: N consecutive good probes spanning at
// least a minimum window, never one lucky answer among failures.
import { sleep } from "../cloudflare/d1-client.ts";

import {
	DEFAULT_HEALTH_PROBES,
	DEFAULT_HEALTH_TIMEOUT_SECONDS,
	DEFAULT_HEALTH_WINDOW_SECONDS,
} from "../constants.ts";

export { DEFAULT_HEALTH_PROBES, DEFAULT_HEALTH_TIMEOUT_SECONDS, DEFAULT_HEALTH_WINDOW_SECONDS };
/** Cloudflare routes a request to a named version of the current deployment with this header. */
export const VERSION_OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides";

export interface HealthExpectation {
	/** The Worker version id that must answer (from the version metadata binding). */
	versionId?: string;
	/**
	 * The deployment token that must answer (the WORKERS_PIPELINE_DEPLOYMENT var `preview` sets):
	 * proof by a value the pipeline chose, where the platform's version id is not documented.
	 */
	deployment?: string;
	/** The migration deploy passed as WORKERS_PIPELINE_EXPECTED_HEAD, when known. */
	expectedHead?: string | null;
	/** Other versions whose healthy answers count too (the old one during a traffic split). */
	alsoAccept?: readonly string[];
}

export interface ProbeVerdict {
	good: boolean;
	/** What a human needs: why a probe is not good (or "healthy"). */
	reason: string;
	/** The app has no health route (or not one that follows the contract). */
	noRoute?: boolean;
}

export const HEALTH_ROUTE_HINT =
	'add the health route of workers-pipeline/health (Next.js: `export const { GET } = createNextHealthRoute()` in app/api/health/route.ts; Hono: `app.get("/api/health", healthRoute())`) and the "version_metadata" binding; see docs/deploy.md "The health contract"';

const isObject = (value: unknown): value is Record<string, unknown> =>
	typeof value === "object" && value !== null && !Array.isArray(value);

// Cloudflare's own error pages (`error code: 1101`, …) come from the platform, not the app
// (developers.cloudflare.com/workers/observability/errors/): never evidence of a missing route.
const PLATFORM_ERROR = /^error code: (1\d{3})\b/;

/** Pure: one health answer against what deploy expects. */
export function judgeProbe(status: number, body: unknown, expect: HealthExpectation): ProbeVerdict {
	const platform = typeof body === "string" ? PLATFORM_ERROR.exec(body.trim()) : null;
	if (platform)
		return {
			good: false,
			reason: `HTTP ${status} from Cloudflare (error ${platform[1]}), not from the app: see developers.cloudflare.com/workers/observability/errors/`,
		};
	if (status === 404 || status === 405)
		return {
			good: false,
			noRoute: true,
			reason: `no health route (HTTP ${status}): ${HEALTH_ROUTE_HINT}`,
		};
	if (!isObject(body) || typeof body.status !== "string" || !("version" in body)) {
		return {
			good: false,
			noRoute: status < 500,
			reason: `HTTP ${status} without the health contract's JSON ({status, version, schema, db}): ${HEALTH_ROUTE_HINT}`,
		};
	}
	const version = typeof body.version === "string" ? body.version : null;
	const reasonText = typeof body.reason === "string" ? `: ${body.reason}` : "";
	if (expect.deployment !== undefined) return judgeDeployment(status, body, expect, reasonText);
	const other =
		version !== null && version !== expect.versionId && expect.alsoAccept?.includes(version);
	if (version !== expect.versionId && !other) {
		return {
			good: false,
			reason:
				version === null
					? `the health body has no version${reasonText}`
					: `version ${version} answered, not ${expect.versionId}`,
		};
	}
	// Another accepted version (the old one during a split) never got this run's expected head.
	return judgeHealthyAnswer(status, body, other ? undefined : expect.expectedHead, reasonText);
}

/** Pure: a health answer judged by the deployment token (`preview`) instead of the version id. */
function judgeDeployment(
	status: number,
	body: Record<string, unknown>,
	expect: HealthExpectation,
	reasonText: string,
): ProbeVerdict {
	const deployment = typeof body.deployment === "string" ? body.deployment : null;
	if (deployment !== expect.deployment)
		return {
			good: false,
			reason:
				deployment === null
					? `the health body has no deployment token: the Worker did not get the WORKERS_PIPELINE_DEPLOYMENT var, or its workers-pipeline/health predates deployment tokens${reasonText}`
					: `deployment ${deployment} answered, not ${expect.deployment}`,
		};
	return judgeHealthyAnswer(status, body, expect.expectedHead, reasonText);
}

/** Pure: the right Worker answered; healthy when it says ok with HTTP 200 and expects the head. */
function judgeHealthyAnswer(
	status: number,
	body: Record<string, unknown>,
	expectedHead: string | null | undefined,
	reasonText: string,
): ProbeVerdict {
	if (status !== 200 || body.status !== "ok")
		return { good: false, reason: `HTTP ${status}${reasonText}` };
	const schema = isObject(body.schema) ? body.schema : {};
	if (expectedHead && schema.expected !== expectedHead)
		return {
			good: false,
			reason: `the Worker expects ${String(schema.expected ?? "no migration")}, not ${expectedHead}: it did not get the WORKERS_PIPELINE_EXPECTED_HEAD var`,
		};
	return { good: true, reason: "healthy" };
}

export interface HealthPolicy {
	timeoutMs: number;
	probes: number;
	windowMs: number;
}

/** Pure: does a streak of good probes hold? */
export const streakHolds = (
	streak: { count: number; startedAt: number },
	now: number,
	policy: HealthPolicy,
) => streak.count >= policy.probes && now - streak.startedAt >= policy.windowMs;

/**
 * How long the same non-health answer must last before it means "no health route" rather than
 * "the old version still answers": a deployment change "can take up to a couple of seconds to be
 * available globally" (developers.cloudflare.com/workers/versions-and-deployments/version-overrides/).
 */
export const DEFAULT_NO_ROUTE_AFTER_MS = 10_000;

/**
 * Pure: is a streak of identical no-route answers definite? As many probes as health needs, over
 * the health window and at least `afterMs` (propagation), so a version still starting or an old
 * one still routed (5xx, no answer, another version's health, a different page) never ends it.
 */
export const noRouteSettled = (
	streak: { count: number; startedAt: number },
	now: number,
	policy: HealthPolicy,
	afterMs: number,
) => streak.count >= policy.probes && now - streak.startedAt >= Math.max(policy.windowMs, afterMs);

/** Pure: the answers a missing route gives (404/405, a page without the contract); 401/403/429 may change. */
export const isDefiniteNoRoute = (status: number, verdict: ProbeVerdict): boolean =>
	verdict.noRoute === true && (status === 404 || status === 405 || status < 400);

/** The pause between probes while a streak builds: the window spread over the probes. */
export const holdInterval = (policy: HealthPolicy) =>
	Math.min(5000, Math.max(100, policy.windowMs / Math.max(1, policy.probes - 1)));

export interface HealthObservation {
	ok: boolean;
	attempts: number;
	/** Good probes seen in all (a blink among failures is counted, never enough). */
	good: number;
	lastStatus: number | undefined;
	lastBody: unknown;
	reason: string;
	noRoute: boolean;
	durationMs: number;
}

export interface WaitForHealthOptions extends HealthPolicy {
	url: string;
	expect: HealthExpectation;
	headers?: Record<string, string>;
	signal?: AbortSignal;
	onProbe?: (reason: string) => void;
	/** See DEFAULT_NO_ROUTE_AFTER_MS (tests shorten it). */
	noRouteAfterMs?: number;
}

async function probe(
	url: string,
	headers: Record<string, string>,
	timeoutMs: number,
	signal?: AbortSignal,
) {
	const response = await fetch(url, {
		headers: { accept: "application/json", "cache-control": "no-store", ...headers },
		signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]),
	});
	const text = await response.text();
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		body = text.slice(0, 200);
	}
	return { status: response.status, body };
}

/** One probe judged; a network failure is a verdict too ("no answer"), an abort of `signal` throws. */
async function probeAndJudge(
	options: WaitForHealthOptions,
	deadline: number,
): Promise<{ verdict: ProbeVerdict; answer?: { status: number; body: unknown } }> {
	try {
		const answer = await probe(
			options.url,
			options.headers ?? {},
			Math.max(500, Math.min(5000, deadline - Date.now())),
			options.signal,
		);
		return { verdict: judgeProbe(answer.status, answer.body, options.expect), answer };
	} catch (error) {
		if (options.signal?.aborted) throw error;
		return { verdict: { good: false, reason: `no answer (${(error as Error).message})` } };
	}
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/**
 * Probes `url` until health holds (see `streakHolds`), the same no-route answer has settled (see
 * `noRouteSettled`), or the deadline; an abort of `signal` throws.
 */
export async function waitForHealth(options: WaitForHealthOptions): Promise<HealthObservation> {
	const started = Date.now();
	const deadline = started + options.timeoutMs;
	const noRouteAfterMs = options.noRouteAfterMs ?? DEFAULT_NO_ROUTE_AFTER_MS;
	const observation: HealthObservation = {
		ok: false,
		attempts: 0,
		good: 0,
		lastStatus: undefined,
		lastBody: undefined,
		reason: "no answer",
		noRoute: false,
		durationMs: 0,
	};
	const streak = { count: 0, startedAt: 0 };
	// Identical no-route answers in a row (status and body): the evidence for deciding early.
	const missing = { count: 0, startedAt: 0, answer: "" };
	let backoff = 500;
	while (Date.now() < deadline) {
		options.signal?.throwIfAborted();
		observation.attempts++;
		const { verdict, answer } = await probeAndJudge(options, deadline);
		if (answer) {
			observation.lastStatus = answer.status;
			observation.lastBody = answer.body;
		}
		observation.noRoute = verdict.noRoute === true;
		const now = Date.now();
		if (answer && isDefiniteNoRoute(answer.status, verdict)) {
			const same = `${answer.status} ${JSON.stringify(answer.body)}`;
			if (missing.count === 0 || missing.answer !== same)
				Object.assign(missing, { count: 0, startedAt: now, answer: same });
			missing.count++;
			if (noRouteSettled(missing, now, options, noRouteAfterMs)) {
				observation.reason = `the same answer ${missing.count} times in a row over ${seconds(now - missing.startedAt)} s: ${verdict.reason}`;
				observation.durationMs = now - started;
				return observation;
			}
		} else missing.count = 0;
		if (verdict.good) {
			observation.good++;
			if (streak.count === 0) streak.startedAt = now;
			streak.count++;
			if (streakHolds(streak, now, options)) {
				observation.ok = true;
				observation.reason = `healthy: ${streak.count} good probes in a row over ${seconds(now - streak.startedAt)} s`;
				observation.durationMs = now - started;
				return observation;
			}
			observation.reason = `healthy ${streak.count} time(s) in a row, holding`;
		} else {
			streak.count = 0;
			observation.reason = verdict.reason;
		}
		options.onProbe?.(observation.reason);
		const pause = verdict.good ? holdInterval(options) : backoff;
		if (!verdict.good) backoff = Math.min(backoff * 2, 5000);
		const wait = Math.min(pause, Math.max(0, deadline - Date.now()));
		if (wait <= 0) break;
		await sleep(wait, options.signal);
	}
	observation.durationMs = Date.now() - started;
	observation.reason = `timed out after ${Math.round(options.timeoutMs / 1000)} s: ${observation.reason} (${observation.good} good of ${observation.attempts} probes; healthy needs ${options.probes} in a row over ${seconds(options.windowMs)} s)`;
	return observation;
}
