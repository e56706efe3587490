// Vite 7 and older pre-bundle dependencies with esbuild into
// node_modules/.vite/deps/, which breaks new URL('../dist/x.wasm',
// import.meta.url) inside the package (vite#8427) in the dev server: the
// fetch gets the app's index.html.  The one line shoal needs there:
export default { optimizeDeps: { exclude: ['shoal'] } };
