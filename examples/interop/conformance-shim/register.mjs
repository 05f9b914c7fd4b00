// The conformance CLI imports `globSync` from `fs`, which Node 22 has and
// Node 20 lacks; server mode never calls it. This hook gives the CLI an
// `fs` with a `globSync` that says so, and leaves every other module alone.
import { register } from "node:module";
register("./hook.mjs", import.meta.url);
