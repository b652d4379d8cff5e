import type { StepResult } from "../report/model.ts";

export interface StepContext {
	/** The project directory (where the wrangler config lives). */
	cwd: string;
	env: Readonly<Record<string, string | undefined>>;
	/** Progress lines for long work; the CLI decides how (and whether) to show them. */
	progress: (message: string) => void;
	signal?: AbortSignal;
}

/** A step takes its arguments `A` and returns a result whose `data` is its own `TData`. */
export interface Step<A, TData extends object = Record<string, unknown>> {
	name: string;
	run: (ctx: StepContext, args: A) => Promise<StepResult<TData>>;
}

/** Typed identity: exists for inference only. */
export const defineStep = <A, TData extends object = Record<string, unknown>>(
	step: Step<A, TData>,
): Step<A, TData> => step;

export const makeStepResult = <TData extends object = Record<string, unknown>>(
	name: string,
	startedAt: number,
	fields: Omit<StepResult<TData>, "name" | "durationMs">,
): StepResult<TData> => ({
	name,
	durationMs: Math.round(performance.now() - startedAt),
	...fields,
});
