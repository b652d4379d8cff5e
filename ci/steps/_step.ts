import type { StepResult } from "../report/model.ts";

export interface StepContext {
	/** The project directory (where wrangler.jsonc lives). */
	cwd: string;
	env: Readonly<Record<string, string | undefined>>;
	/** Progress lines for long work; the CLI decides how (and whether) to show them. */
	progress: (message: string) => void;
	signal?: AbortSignal;
}

export interface Step<A> {
	name: string;
	run: (ctx: StepContext, args: A) => Promise<StepResult>;
}

/** Typed identity: exists for inference only. */
export const defineStep = <A>(step: Step<A>): Step<A> => step;

export const makeStepResult = (
	name: string,
	startedAt: number,
	fields: Omit<StepResult, "name" | "durationMs">,
): StepResult => ({ name, durationMs: Math.round(performance.now() - startedAt), ...fields });
