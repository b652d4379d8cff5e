// GET /api/health: the workers-pipeline health contract (docs/deploy.md), from the library.
import { createNextHealthRoute } from "../../../../ci/health/next.ts";

export const { GET } = createNextHealthRoute();
export const dynamic = "force-dynamic";
