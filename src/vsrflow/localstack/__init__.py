"""The local stack: the whole AWS event path on one machine, without an AWS account.

One detached daemon (:mod:`vsrflow.localstack.daemon`) holds

* moto in server mode on ``127.0.0.1`` with the stack deployed from the same CloudFormation
  template as AWS (``infra/cfn/vsrflow.yaml``; :mod:`.deploy` completes what moto's
  CloudFormation ignores: bucket notifications and versioning);
* S3 notifications delivered to an SQS "ingress" queue that stands in for the Lambda's async
  invocation queue, and a runner (:mod:`.lambda_runner`) that turns each message into a call of
  the real handler file ``lambda/s3_trigger/app.py`` with retries and the template's DLQ;
* an EC2 instance tagged as the cluster's head node and an SSM agent shim (:mod:`.ssm_agent`)
  that executes ``AWS-RunShellScript`` commands sent to it and writes their status, exit code,
  stdout and stderr into moto's own command record;

next to the local Slurm of ``slurm/emulator`` (:mod:`.slurm`). :mod:`.stack` starts and stops
it all (``vsrflow local up|down|status|upload``).
"""
