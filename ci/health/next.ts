// Next.js (OpenNext on Workers) route for workers-pipeline/health. A route file:
//   export const { GET } = createNextHealthRoute(); export const dynamic = "force-dynamic";
import { type HealthOptions, handleHealth, healthResponse } from "./index.ts";

export function createNextHealthRoute(options: HealthOptions = {}): {
	GET(request: Request): Promise<Response>;
} {
	return {
		async GET(request: Request): Promise<Response> {
			let env: object;
			try {
				// Imported lazily (a literal, so bundlers still see it): no dependency for non-Next apps.
				const { getCloudflareContext } = await import("@opennextjs/cloudflare");
				env = (await getCloudflareContext({ async: true })).env;
			} catch (error) {
				return healthResponse({
					status: "error",
					version: null,
					schema: { head: null, expected: null },
					db: "error",
					reason: `no Cloudflare context (${error instanceof Error ? error.message : String(error)}): is this running on Workers through @opennextjs/cloudflare?`,
				});
			}
			return handleHealth(request, env, options);
		},
	};
}
