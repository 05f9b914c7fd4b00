export async function resolve(specifier, context, next) {
  const fromCli = context.parentURL?.includes("/@modelcontextprotocol/conformance/");
  if (fromCli && (specifier === "fs" || specifier === "node:fs")) {
    return { url: new URL("./fs.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
