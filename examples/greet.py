"""examples/greet.py: a local step, an activity on queue mail, a timer."""
import durable_worker as dw


@dw.activity()
def send_email(ctx, msg):
    print("sending %r to %s" % (msg["text"], msg["to"]), flush=True)
    return {"sent": True, "to": msg["to"]}


@dw.workflow()
def greet(ctx, input):
    text = ctx.step("compose", lambda: "Hello, %s!" % input["name"])
    msg = {"to": input["name"].lower() + "@example.com", "text": text}
    receipt = ctx.activity("send_email", msg, queue="mail", start_to_close="10s",
                           retry={"maximum_attempts": 3})
    ctx.sleep("1s")
    return {"greeting": text, "receipt": receipt}
