import { defineConfig } from 'vite';

export default defineConfig({
  // `vite dev` pre-bundles dependencies, which would separate the package's
  // module from the wasm file it loads next to itself; `vite build` does not.
  optimizeDeps: { exclude: ['ringsource'] },
});
