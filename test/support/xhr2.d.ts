// xhr2 ships no type declarations; test/support/strophe.ts uses it as the browser's XMLHttpRequest.
declare module 'xhr2' {
  const XMLHttpRequest: unknown;
  export default XMLHttpRequest;
}
