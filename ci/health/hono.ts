// Hono adapter for workers-pipeline/health: `app.get("/api/health", healthRoute())`.
import { type HealthOptions, handleHealth } from "./index.ts";

/** The part of Hono's Context the route uses (structural: no dependency on hono). */
export interface HonoLikeContext {
	req: { raw: Request };
	env: unknown;
}

export function healthRoute(
	options: HealthOptions = {},
): (c: HonoLikeContext) => Promise<Response> {
	return (c) => handleHealth(c.req.raw, (c.env ?? {}) as object, options);
}
