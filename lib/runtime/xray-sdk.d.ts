// The one part of aws-xray-sdk-core that lib/runtime/xray-tracing.ts imports and the package gives no
// types for: the Lambda environment (the facade segment under which a function's subsegments go).
declare module 'aws-xray-sdk-core/dist/lib/env/aws_lambda.js' {
  export function init(): void;
}
