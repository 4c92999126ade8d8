"""The demo workflow: a local step, an activity on another queue, a
durable timer, and a result.  Run a worker for both queues with

    PYTHONPATH=clients/python python3 -m durable_worker --queue default examples.greet
    PYTHONPATH=clients/python python3 -m durable_worker --queue mail examples.greet
"""
import durable_worker as dw


@dw.activity()
def send_email(ctx, msg):
    print("    [activity] sending %r to %s" % (msg["text"], msg["to"]), flush=True)
    return {"sent": True, "to": msg["to"]}


@dw.workflow()
def greet(ctx, input):
    text = ctx.step("compose", lambda: "Hello, %s!" % input["name"])
    receipt = ctx.activity("send_email", {"to": input["name"].lower() + "@example.com", "text": text},
                           queue="mail", start_to_close="10s",
                           retry={"maximum_attempts": 3})
    ctx.sleep("1s")
    return {"greeting": text, "receipt": receipt}
