// `import text from "file?raw"`: Vite hands over the file's text (its own JSON parser refuses the lone
// surrogates the hash vectors contain on purpose, JSON.parse takes them).
declare module "*?raw" {
  const text: string;
  export default text;
}
