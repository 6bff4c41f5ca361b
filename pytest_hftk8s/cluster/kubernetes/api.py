"""The one door to the Kubernetes API: a kubeconfig-bound client and its ``call_api`` boundary.

Every request of the kubernetes backend and of the Kubernetes chaos driver goes through
:meth:`KubeApi.call_api` (generated client methods), :meth:`KubeApi.request` (raw REST paths, used
for server-side apply of any kind and for reads that we want as plain JSON) or
:meth:`KubeApi.open_websocket` (the port-forward streams). Both translate the
client's ``ApiException`` and transport errors into the project's :class:`ClusterError` /
:class:`ClusterUnavailable`, chained, with a message that says what to do.

This is the only module family in the project that imports ``kubernetes``, and it does so lazily,
inside functions, so importing the plugin stays cheap. It knows nothing about pods, gates or chaos.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pytest_hftk8s.errors import ClusterError, ClusterUnavailable

__all__ = ["CHANNEL_V4", "DEFAULT_REQUEST_TIMEOUT", "ApiNotFound", "KubeApi"]

T = TypeVar("T")

#: Seconds for one HTTP request (connect + read). Nothing in this backend waits unbounded.
DEFAULT_REQUEST_TIMEOUT = 10.0
#: The websocket subprotocol of exec and port-forward: one leading channel byte per message.
CHANNEL_V4 = "v4.channel.k8s.io"


class ApiNotFound(ClusterError):
    """The API answered 404 for an object or resource (callers that delete treat it as done)."""


class KubeApi:
    """A client for one kube context. Cheap to create; :meth:`close` releases the connection pool."""

    def __init__(
        self,
        *,
        context: str,
        kubeconfig: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
        from urllib3.util.retry import Retry

        self.context = context
        self.request_timeout = request_timeout
        configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except (ConfigException, OSError, TypeError, ValueError) as e:
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise ClusterUnavailable(
                f"cannot load kube context {context!r} from {where}: {e}. Expected a kubeconfig that "
                f"defines this context; list them with `kubectl config get-contexts` and pass one with "
                f"--hft-cluster=<context>, or use --hft-cluster=local to run without a cluster."
            ) from e
        # Bounded: only failed connects are retried (twice, briefly); a request the server may have
        # seen is never resent, so a create cannot happen twice behind the caller's back.
        configuration.retries = Retry(total=2, connect=2, read=0, status=0, other=0, backoff_factor=0.2)
        self.host = configuration.host
        self.api_client = client.ApiClient(configuration)

    # -- the boundary ----------------------------------------------------------------------------

    def call_api(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call a generated client method, translating its failures. ``what`` names the action."""
        kwargs.setdefault("_request_timeout", self.request_timeout)
        with self.translated(what):
            return fn(*args, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """One REST request on ``path``; returns the decoded JSON (or the text when ``raw``)."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "*/*" if raw else "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        with self.translated(what):
            params = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*params, _request_timeout=self.request_timeout)
            data: bytes = response.read()
            if not 200 <= response.status <= 299:
                raise ApiException(http_resp=response, body=data.decode("utf-8", "replace"))
            text = data.decode("utf-8", "replace")
            return text if raw else (json.loads(text) if text else {})

    @contextlib.contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """The error translation of :meth:`call_api`, for client work that is not one call."""
        from kubernetes.client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError
        from websocket import WebSocketException

        try:
            yield
        except ApiException as e:
            raise self._translate(what, status=e.status, reason=e.reason, body=e.body) from e
        except (HTTPError, OSError) as e:
            raise ClusterUnavailable(
                f"cannot {what}: the API server of context {self.context!r} at {self.host} did not "
                f"answer ({type(e).__name__}: {e}). Check that the cluster is running "
                f"(`kubectl --context {self.context} get ns`)."
            ) from e
        except WebSocketException as e:  # exec and port-forward streams
            raise ClusterError(
                f"cannot {what}: the websocket stream failed ({type(e).__name__}: {e}). Check that the pod "
                f"is running and that your credentials allow pods/exec and pods/portforward."
            ) from e
        except json.JSONDecodeError as e:
            raise ClusterError(f"cannot {what}: the API server answered with non-JSON: {e}") from e
        except (OpenApiException, ValueError) as e:  # client-side validation of our own arguments
            raise ClusterError(f"cannot {what}: the client rejected the request: {e}") from e

    def custom_objects(self) -> Any:
        """A ``CustomObjectsApi`` on this client (its methods go through :meth:`call_api`)."""
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    def open_websocket(
        self, path: str, *, what: str, query: Sequence[tuple[str, str]] = (), protocol: str = CHANNEL_V4
    ) -> Any:
        """A connected websocket on a streaming subresource (``pods/<name>/portforward``).

        Authenticated as :meth:`request` is (bearer token, client certificate, CA) and bounded by the
        request timeout, unlike the client's own ``stream`` helpers (unbounded connect, plus a proxy
        thread per stream whose CPU its caller cannot see). The caller speaks ``protocol`` on it.
        """
        from kubernetes.stream import ws_client
        from websocket import WebSocket

        configuration = self.api_client.configuration
        with self.translated(what):
            _method, url, headers, _body, _post = self.api_client.param_serialize(
                method="GET",
                resource_path=path,
                query_params=list(query),
                header_params={},
                auth_settings=["BearerToken"],
            )
            url = ws_client.get_websocket_url(url)
            header = {"sec-websocket-protocol": protocol}
            if "authorization" in headers:
                header["authorization"] = headers["authorization"]
            if configuration.proxy or configuration.proxy_headers:  # the client's proxy handling
                return ws_client.create_websocket(configuration, url, header)
            ws = WebSocket(sslopt=_ssl_options(configuration, url), skip_utf8_validation=True)
            ws.settimeout(self.request_timeout)
            ws.connect(url, header=[f"{k}: {v}" for k, v in header.items()])
            return ws

    def close(self) -> None:
        self.api_client.close()

    # -- translation -----------------------------------------------------------------------------

    def _translate(
        self, what: str, *, status: int | None, reason: str | None, body: str | None
    ) -> ClusterError:
        message = _status_message(body) or reason or "no message"
        seen = f"HTTP {status} {reason or ''}: {message}".strip()
        if status == 404:
            return ApiNotFound(
                f"cannot {what}: not found ({seen}). Expected the object or its API to exist; if it is "
                f"a custom resource, install its CRDs (e.g. Chaos Mesh) in context {self.context!r}."
            )
        if status in (401, 403):
            return ClusterError(
                f"cannot {what}: access denied ({seen}). The credentials of context {self.context!r} "
                f"need RBAC rights for this; check with `kubectl auth can-i`."
            )
        if status == 409:
            return ClusterError(f"cannot {what}: conflict ({seen}). Another field manager owns it.")
        if status in (400, 422):
            return ClusterError(f"cannot {what}: the API server rejected the object ({seen}).")
        if status is None or status >= 500 or status == 429:
            return ClusterUnavailable(
                f"cannot {what}: the API server of context {self.context!r} failed ({seen}); retry, "
                f"or check the control plane."
            )
        return ClusterError(f"cannot {what}: {seen}")


def _ssl_options(configuration: Any, url: str) -> dict[str, Any]:
    """The TLS settings of a kubeconfig, as ``websocket-client`` takes them (the client's own rules)."""
    import ssl

    options: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE}
    if url.startswith("wss://") and configuration.verify_ssl:
        import certifi

        options = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": configuration.ssl_ca_cert or certifi.where()}
        if configuration.assert_hostname is not None:
            options["check_hostname"] = configuration.assert_hostname
    if configuration.cert_file:
        options["certfile"] = configuration.cert_file
    if configuration.key_file:
        options["keyfile"] = configuration.key_file
    if configuration.tls_server_name:
        options["server_hostname"] = configuration.tls_server_name
    return options


def _status_message(body: str | None) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, if the body is one."""
    if not body:
        return ""
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(payload, Mapping):
        return str(payload.get("message") or "")
    return ""
