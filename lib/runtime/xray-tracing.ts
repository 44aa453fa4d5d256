// X-Ray tracing of the path of one frame (docs/architecture.md "Tracing"): a subsegment per frame (and
// per $disconnect) annotated with the tenant and the stanza kind, and under it a subsegment per AWS SDK
// call the frame made (DynamoDB, PostToConnection), through the SDK's own v3 client middleware. Loaded
// only when TRACING=true (createLambdaRuntime imports this file dynamically), so a deployment without
// tracing neither evaluates the X-Ray SDK nor pays for it at cold start.
// https://docs.aws.amazon.com/xray/latest/devguide/xray-sdk-nodejs.html
// Annotations: https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html#api-segmentdocuments-annotations
import AWSXRay from 'aws-xray-sdk-core';
import type { FrameTracer } from '../core/server.ts';
import type { FrameScope } from '../metrics/metrics.ts';

export interface XRayTracer extends FrameTracer {
  /** Instruments an AWS SDK v3 client: each command a subsegment under the current frame's. */
  attach(client: unknown, service: string): void;
}

interface SdkLog {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/**
 * The tracer over the X-Ray SDK in automatic mode. In Lambda with active tracing the SDK's facade
 * segment is the parent; elsewhere (no segment in the context) work runs untraced, without an error.
 */
export function createXRayTracer(log?: SdkLog): XRayTracer {
  // No segment in the context (a local process without a parent): run untraced, quietly.
  AWSXRay.setContextMissingStrategy('IGNORE_ERROR');
  if (log) AWSXRay.setLogger(log);
  return {
    attach(client) {
      AWSXRay.captureAWSv3Client(client as Parameters<typeof AWSXRay.captureAWSv3Client>[0]);
    },
    trace<T>(name: string, scope: FrameScope, fn: () => Promise<T>): Promise<T> {
      if (!AWSXRay.getSegment()) return fn();
      return AWSXRay.captureAsyncFunc(name, async (sub) => {
        try {
          return await fn();
        } catch (err) {
          sub?.addError(err as Error);
          throw err;
        } finally {
          // The tenant and kind are known only once the frame is parsed: annotate at the end.
          if (sub) {
            annotate(sub, scope);
            sub.close();
          }
        }
      });
    },
  };
}

/** X-Ray annotations are indexed for filter expressions (annotation.tenant = "example.com"). */
function annotate(sub: AWSXRay.Subsegment, scope: FrameScope): void {
  sub.addAnnotation('tenant', scope.tenant ?? '-');
  if (scope.kind) sub.addAnnotation('kind', scope.kind);
  sub.addAnnotation('outcome', scope.outcome ?? 'ok');
}
