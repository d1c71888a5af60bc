// Files imported `with { type: 'file' }` resolve to a path (embedded in the compiled binary).
declare module '*.css' {
  const path: string;
  export default path;
}
declare module '*.wasm' {
  const path: string;
  export default path;
}
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string;
  export default path;
}
declare module '*.data' {
  const path: string;
  export default path;
}
declare module '*.tar.gz' {
  const path: string;
  export default path;
}

/** The tokenizer worker's path inside the compiled binary (scripts/build.ts defines it; unset from source). */
declare const EMBEDDED_TOKENIZER_WORKER: string | undefined;
