"""How the app learns the client's address behind CloudFront -> API Gateway -> ALB.

The app's peer is the ALB, and API Gateway's public URL lets anyone send any header to it, so
no header a client could write is believed. The distribution therefore sends two of its own:

- `X-Viewer-Address`, set by a viewer-request function from the connection CloudFront accepted
  (`event.viewer.ip`), replacing whatever the viewer sent under that name;
- `X-Viewer-Verify`, an origin custom header holding the generated secret `api/viewer-verify`
  (CloudFront overwrites a viewer's header of that name).

The app believes the first only on a request carrying the second (`api.viewer_verify`); a
request sent to API Gateway's own URL has the gateway's `X-Origin-Verify` but not the
distribution's secret, and is counted at the app's peer.
"""

from __future__ import annotations

from aws_cdk import aws_cloudfront as cloudfront
from constructs import Construct
from textnlp.deployment import VIEWER_ADDRESS_HEADER

#: CloudFront Functions (JavaScript runtime 2.0) name request headers in lower case; a header
#: set here replaces every value the viewer sent under that name.
FUNCTION_CODE = f"""function handler(event) {{
  var request = event.request;
  request.headers['{VIEWER_ADDRESS_HEADER.lower()}'] = {{value: event.viewer.ip}};
  return request;
}}
"""


def viewer_address_function(scope: Construct, id_: str, name: str) -> cloudfront.Function:
    return cloudfront.Function(
        scope, id_,
        function_name=name,
        comment="Sets X-Viewer-Address from the viewer's connection",
        code=cloudfront.FunctionCode.from_inline(FUNCTION_CODE),
        runtime=cloudfront.FunctionRuntime.JS_2_0,
    )
