import type { ProjectConfig } from "../config/schema.ts";
import { CiError } from "../errors.ts";
import { EXIT_USAGE, exitCodeFor } from "../report/codes.ts";
import type { StepResult } from "../report/model.ts";
import type { Step, StepContext } from "./_step.ts";

// Running one step (timeout, stop, errors as results) apart from ci.ts, which imports every step:
// a single-step command loads only its own step and this.

/** Seconds a step may run when timeouts.<step> is not set in workers-pipeline.jsonc. */
export const DEFAULT_STEP_TIMEOUTS_SECONDS: Readonly<Record<string, number>> = {
	lint: 15 * 60,
	test: 30 * 60,
	build: 30 * 60,
	"migration-test": 15 * 60,
	format: 10 * 60,
	architecture: 10 * 60,
	e2e: 45 * 60,
	mutation: 120 * 60,
};
/** How long a step that was told to stop may take to stop its processes and return. */
const STOP_GRACE_MS = 15_000;

/** The timeout of a step: the project's timeouts.<step>, else the default (none for serve). */
export function stepTimeoutSeconds(
	project: ProjectConfig | undefined,
	step: string,
): number | undefined {
	const configured = (
		project?.settings.timeouts as Record<string, number | undefined> | undefined
	)?.[step];
	return configured ?? DEFAULT_STEP_TIMEOUTS_SECONDS[step];
}

/** Pure: a step's cache use, read from its data (build, test: `cached`; migration-test: parity's). */
export function cacheStatus(result: StepResult): "hit" | "miss" | undefined {
	const data = result.data ?? {};
	const parity = (data.parity as { wrangler?: { cached?: unknown } } | undefined)?.wrangler?.cached;
	const cached = typeof data.cached === "boolean" ? data.cached : parity;
	if (typeof cached !== "boolean" || result.skipped) return undefined;
	return cached ? "hit" : "miss";
}

/** Pure: the result a step that ran out of time gets (what it found so far is kept). */
export function makeTimedOutResult(
	name: string,
	seconds: number,
	durationMs: number,
	partial?: StepResult,
): StepResult {
	return {
		name,
		ok: false,
		durationMs,
		summary: `timed out after ${seconds} s (timeouts.${name})`,
		findings: [
			...(partial?.findings ?? []),
			{
				code: "STEP_TIMEOUT",
				severity: "error",
				message: `${name} did not finish within ${seconds} s and was stopped (its processes were killed). If it needs longer, raise "timeouts": { "${name}": <seconds> } in workers-pipeline.jsonc; otherwise look for what hangs (a test waiting on a server, a prompt).`,
			},
		],
		data: partial?.data,
	};
}

const errorResult = (name: string, started: number, error: unknown): StepResult => ({
	name,
	ok: false,
	durationMs: Math.round(performance.now() - started),
	summary: `error: ${(error as Error).message.split("\n")[0]}`,
	findings: [{ code: "STEP_ERROR", severity: "error", message: (error as Error).message }],
});

/**
 * Runs one step with its timeout and turns an unexpected throw into a failed result, so one step
 * never hides the others. The cache hit/miss of a step that reports one joins its summary.
 */
export async function runStepSafely<A>(
	step: Step<A>,
	ctx: StepContext,
	args: A,
	options: { timeoutSeconds?: number } = {},
): Promise<StepResult> {
	const started = performance.now();
	const project = (args as { project?: ProjectConfig } | undefined)?.project;
	const seconds = options.timeoutSeconds ?? stepTimeoutSeconds(project, step.name);
	const controller = new AbortController();
	const forward = () => controller.abort(ctx.signal?.reason);
	if (ctx.signal?.aborted) forward();
	ctx.signal?.addEventListener("abort", forward, { once: true });
	let timedOut = false;
	let timer: NodeJS.Timeout | undefined;
	let graceTimer: NodeJS.Timeout | undefined;
	// Resolves once the step was told to stop and did not return within the grace period.
	const abandoned = new Promise<"abandoned">((resolve) => {
		if (seconds === undefined) return;
		timer = setTimeout(() => {
			timedOut = true;
			controller.abort(new Error(`timeout after ${seconds} s`));
			graceTimer = setTimeout(() => resolve("abandoned"), STOP_GRACE_MS);
		}, seconds * 1000);
	});
	const elapsed = () => Math.round(performance.now() - started);
	try {
		const outcome = await Promise.race([
			step.run({ ...ctx, signal: controller.signal }, args),
			abandoned,
		]);
		if (outcome === "abandoned" || timedOut) {
			const partial = outcome === "abandoned" ? undefined : outcome;
			return makeTimedOutResult(step.name, seconds as number, elapsed(), partial);
		}
		const cache = cacheStatus(outcome);
		return cache
			? {
					...outcome,
					summary: `${outcome.summary} · cache ${cache}`,
					data: { ...outcome.data, cache },
				}
			: outcome;
	} catch (error) {
		if (timedOut) return makeTimedOutResult(step.name, seconds as number, elapsed());
		// Bad usage or configuration concerns the whole run (exit 2), not one step.
		if (error instanceof CiError && exitCodeFor(error.code) === EXIT_USAGE) throw error;
		return errorResult(step.name, started, error);
	} finally {
		clearTimeout(timer);
		clearTimeout(graceTimer);
		ctx.signal?.removeEventListener("abort", forward);
	}
}
