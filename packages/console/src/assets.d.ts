/** Vite's `?url` imports: the file is copied into the build and its URL is the module's default. */
declare module '*?url' {
  const url: string;
  export default url;
}
