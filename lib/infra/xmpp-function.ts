// One Lambda function of xmpp-edge with the project's defaults in one place (runtime, arm64, local
// esbuild bundling to a small ESM file, log retention, explicit memory and timeout, an execution role
// that may write to its own log group and nothing else until a grant says so), and the two grants a
// function can need, each in one call that also passes the name or endpoint it grants: bindTable() and
// bindConnections(). applyDeploymentSettings() sets what the deployment decides for every function of
// a stack (X-Ray tracing, source-mapped stack traces), so a function added later gets it too.
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type CfnFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';
import { BUNDLE_ALIAS, BUNDLE_DEFINE, BUNDLE_EXTERNALS, BUNDLE_MAIN_FIELDS, BUNDLE_TARGET, ESM_REQUIRE_BANNER, SOURCE_MAPS_NODE_OPTIONS, xrayChunkCommand } from './bundling.ts';
import { acknowledge, acknowledgeWildcards } from './nag-acknowledgements.ts';

/**
 * The newest Node.js runtime Lambda and aws-cdk-lib offer (cdk-nag's AwsSolutions-L1 and
 * Serverless-LambdaLatestVersion check for it). Named, not Runtime.NODEJS_LATEST, so a CDK upgrade
 * does not move the functions to a runtime nobody tested; the cdk-nag test says when a newer one exists.
 */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;
export { BUNDLE_TARGET } from './bundling.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface XmppFunctionProps extends Omit<NodejsFunctionProps, 'entry' | 'runtime' | 'architecture' | 'logGroup' | 'logRetention'> {
  /** The file under functions/, without extension: "connect", "ingest", … */
  entryName: string;
  logRetention: RetentionDays;
  /**
   * Who invokes the function synchronously (API Gateway, an event source mapping, CloudFormation):
   * such a function has no asynchronous event to dead-letter, and its caller sees the failure. A
   * function invoked asynchronously has an onFailure destination or a deadLetterQueue instead; one with
   * none of the three fails the cdk-nag test (Serverless-LambdaDLQ).
   */
  invokedSynchronouslyBy?: string;
}

/** Table access of one function: item actions on the table, Query on the named indexes. */
export interface TableAccess {
  actions: readonly string[];
  indexes?: readonly string[];
}

/** Management API methods on @connections: POST sends a frame, DELETE closes, GET asks if alive. */
export type ConnectionMethod = 'POST' | 'GET' | 'DELETE';

export class XmppFunction extends NodejsFunction {
  /** The execution role: its own, so grants are the function's alone. */
  readonly executionRole: Role;

  constructor(scope: Construct, id: string, props: XmppFunctionProps) {
    const { entryName, logRetention, environment, bundling, invokedSynchronouslyBy, ...rest } = props;
    const logGroup = new LogGroup(scope, `${id}Logs`, { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    // Instead of the AWS managed AWSLambdaBasicExecutionRole (logs:CreateLogGroup, CreateLogStream and
    // PutLogEvents on every log group): write access to this function's own log group, which the stack makes.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the xmpp-edge ${entryName} function`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry: `${ROOT}functions/${entryName}.ts`,
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      runtime: LAMBDA_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.seconds(10),
      role,
      logGroup,
      environment,
      bundling: {
        // Bundled by the esbuild in node_modules; `cdk synth` needs neither Docker nor a network.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: BUNDLE_TARGET,
        mainFields: [...BUNDLE_MAIN_FIELDS],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The SDK is bundled, but for the credential providers Lambda never reaches (bundling.ts says why).
        externalModules: [...BUNDLE_EXTERNALS],
        // pino's transport worker and redaction, which the Lambda logger never calls, as stubs (bundling.ts).
        esbuildArgs: { '--alias': Object.entries(BUNDLE_ALIAS).map(([from, to]) => `${from}=${to}`) },
        // The X-Ray part in a file of its own, loaded only with TRACING=true (bundling.ts).
        define: { ...BUNDLE_DEFINE },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [xrayChunkCommand(inputDir, outputDir)],
        },
        tsconfig: `${ROOT}tsconfig.json`,
        ...bundling,
      },
      ...rest,
    });
    this.executionRole = role;
    if (!props.deadLetterQueue && props.onFailure) {
      acknowledge(this, 'Serverless-LambdaDLQ',
        'Failed asynchronous invocations go to the function\'s on-failure destination (an SQS queue with an alarm on its depth), which records the error and the event; a dead-letter queue as well would receive the same events twice.');
    } else if (!props.deadLetterQueue && invokedSynchronouslyBy) {
      acknowledge(this, 'Serverless-LambdaDLQ',
        `Invoked synchronously only, by ${invokedSynchronouslyBy}: no asynchronous event exists to dead-letter, and the caller sees and handles the failure.`);
    }
  }

  /**
   * Deployment-wide settings on every XmppFunction under `scope` (call it once the stack is built).
   * Tracing: X-Ray active tracing, billed per trace recorded, so off unless the context asks for it.
   */
  static applyDeploymentSettings(scope: IConstruct, settings: { tracing: boolean; sourceMaps?: boolean }): XmppFunction[] {
    const functions = scope.node.findAll().filter((c): c is XmppFunction => c instanceof XmppFunction);
    for (const fn of functions) {
      // Mapped stack traces cost each cold start the reading of the source map (README "Cold start").
      if (settings.sourceMaps) fn.addEnvironment('NODE_OPTIONS', SOURCE_MAPS_NODE_OPTIONS);
      if (settings.tracing) {
        (fn.node.defaultChild as CfnFunction).tracingConfig = { mode: 'Active' };
        // The code's own subsegments (a frame's, annotated with tenant and kind, and each AWS call's):
        // createLambdaRuntime loads the X-Ray SDK only when this is set (docs/architecture.md "Tracing").
        fn.addEnvironment('TRACING', 'true');
        // X-Ray's PutTraceSegments and PutTelemetryRecords take no resource: "*" is the only resource there is.
        const xray = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'];
        fn.executionRole.addToPrincipalPolicy(new PolicyStatement({ actions: xray, resources: ['*'] }));
        acknowledgeWildcards(fn.executionRole, ['*'],
          'X-Ray tracing (context tracing=true): xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires "*" for them; no other action is granted on "*".');
      } else {
        acknowledge(fn, 'Serverless-LambdaTracing',
          'X-Ray tracing is off by default because it is billed per trace recorded (README "What it costs"); a deployment turns it on with the context flag tracing=true. The ingest\'s metrics and JSON logs carry the connection id to follow a frame meanwhile.');
      }
    }
    return functions;
  }

  /** Grants exactly `access` on the table (and its named indexes) and passes the table's name in `envName`. */
  bindTable(table: ITableV2, access: TableAccess, envName = 'TABLE_NAME'): this {
    this.addToRolePolicy(new PolicyStatement({ actions: [...access.actions], resources: [table.tableArn] }));
    if (access.indexes?.length) {
      this.addToRolePolicy(
        new PolicyStatement({ actions: ['dynamodb:Query'], resources: access.indexes.map((name) => `${table.tableArn}/index/${name}`) }),
      );
    }
    this.addEnvironment(envName, table.tableName);
    return this;
  }

  /**
   * Grants execute-api:ManageConnections with `methods` on the connections of this region's stage, and
   * passes its management endpoint as MANAGEMENT_ENDPOINT (the endpoint a session records).
   *
   * With `otherRegions`, the same methods on the same stage name of any API in those regions of this
   * account: a session records its own region's endpoint, and a stanza for a user connected elsewhere
   * is posted there. The other regions' API ids are made by their own stacks and are not known here,
   * hence `*` for the API id only; region, account, stage, method and the @connections path stay fixed.
   */
  bindConnections(stage: WebSocketStage, methods: readonly ConnectionMethod[], otherRegions: readonly string[] = []): this {
    const stack = Stack.of(this);
    const arn = (region: string, apiId: string, method: string) =>
      `arn:${stack.partition}:execute-api:${region}:${stack.account}:${apiId}/${stage.stageName}/${method}/@connections/*`;
    const resources = [
      ...methods.map((m) => arn(stack.region, stage.api.apiId, m)),
      ...otherRegions.flatMap((region) => methods.map((m) => arn(region, '*', m))),
    ];
    this.addToRolePolicy(new PolicyStatement({ actions: ['execute-api:ManageConnections'], resources }));
    acknowledgeWildcards(this.executionRole, resources.filter((r) => !r.includes(':*/')),
      'execute-api:ManageConnections names connections only as {api}/{stage}/{method}/@connections/{connectionId}, and connection ids are made by API Gateway at run time: "@connections/*" is the narrowest resource IAM can express. It is scoped to this region\'s own WebSocket API (its id), its one stage and the methods this function uses (POST sends a frame, DELETE closes, GET asks whether a connection lives).');
    acknowledgeWildcards(this.executionRole, resources.filter((r) => r.includes(':*/')),
      'Cross-region delivery (docs/architecture.md "Deploy: CDK"): a session records its own region\'s management endpoint, and a stanza for a user connected in another listed region is posted there. That region\'s API id is made by its own stack and is unknown to this one, so the API id is "*"; region, account, stage name, method and the @connections path stay fixed, so only a WebSocket API of this account in a listed region with the same stage name matches.');
    this.addEnvironment('MANAGEMENT_ENDPOINT', stage.callbackUrl);
    return this;
  }
}
