// X-Ray tracing of the path of one frame (docs/architecture.md "Tracing"): a subsegment per frame (and
// per $disconnect) annotated with the tenant and the stanza kind, and under it a subsegment per AWS SDK
// call the frame made (DynamoDB, PostToConnection), through the SDK's own v3 client middleware. Loaded
// only when TRACING=true (createLambdaRuntime imports this file dynamically), so a deployment without
// tracing never evaluates the X-Ray SDK.
//
// Only the parts of aws-xray-sdk-core used here are imported (context, capture, the v3 client patcher,
// the Lambda facade segment), not its index, which also loads the SDK v2, HTTP, promise and SQL patchers
// and the EC2/ECS plugins: 40 KB less in the X-Ray file beside every bundle (README "Bundle sizes"). The
// package's version is pinned for these paths; what its index does at load (SDK data, the Lambda facade) is done
// in loadSdk() below.
// https://docs.aws.amazon.com/xray/latest/devguide/xray-sdk-nodejs.html
// Annotations: https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html#api-segmentdocuments-annotations
import contextUtils from 'aws-xray-sdk-core/dist/lib/context_utils.js';
import capture from 'aws-xray-sdk-core/dist/lib/capture.js';
import lambdaEnv from 'aws-xray-sdk-core/dist/lib/env/aws_lambda.js';
import logging from 'aws-xray-sdk-core/dist/lib/logger.js';
import aws3 from 'aws-xray-sdk-core/dist/lib/patchers/aws3_p.js';
import segmentUtils from 'aws-xray-sdk-core/dist/lib/segments/segment_utils.js';
import type Subsegment from 'aws-xray-sdk-core/dist/lib/segments/attributes/subsegment.js';
import sdkPackage from 'aws-xray-sdk-core/package.json' with { type: 'json' };
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

let loaded = false;

/** What the SDK's index does when it is loaded: name the SDK in segments, and in Lambda make the facade segment. */
function loadSdk(): void {
  if (loaded) return;
  loaded = true;
  segmentUtils.setSDKData({ sdk: 'X-Ray for Node.js', sdk_version: sdkPackage.version, package: sdkPackage.name });
  segmentUtils.setServiceData({ runtime: 'node', runtime_version: process.version, name: 'xmpp-edge' });
  if (process.env.LAMBDA_TASK_ROOT) lambdaEnv.init();
}

/**
 * The tracer over the X-Ray SDK in automatic mode. In Lambda with active tracing the SDK's facade
 * segment is the parent; elsewhere (no segment in the context) work runs untraced, without an error.
 */
export function createXRayTracer(log?: SdkLog): XRayTracer {
  loadSdk();
  // No segment in the context (a local process without a parent): run untraced, quietly.
  contextUtils.setContextMissingStrategy('IGNORE_ERROR');
  if (log) logging.setLogger(log);
  return {
    attach(client) {
      aws3.captureAWSClient(client as Parameters<typeof aws3.captureAWSClient>[0]);
    },
    trace<T>(name: string, scope: FrameScope, fn: () => Promise<T>): Promise<T> {
      if (!contextUtils.getSegment()) return fn();
      return capture.captureAsyncFunc(name, async (sub) => {
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
function annotate(sub: Subsegment, scope: FrameScope): void {
  sub.addAnnotation('tenant', scope.tenant ?? '-');
  if (scope.kind) sub.addAnnotation('kind', scope.kind);
  sub.addAnnotation('outcome', scope.outcome ?? 'ok');
}
