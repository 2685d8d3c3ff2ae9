//! The transactional CRC-64 of Azure Blob requests (`x-ms-content-crc64`, issue 19): every
//! Put Block carries the CRC-64 of its body, which the service recomputes over what it
//! received and refuses the block (400 Crc64Mismatch) when they differ. Azure's CRC-64 is the
//! one NVMe defines (CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5, initial value and
//! final XOR all ones), the value the Azure SDKs compute; the header carries its 8 bytes
//! little-endian, base64. Computed with `crc-fast` (SIMD carry-less multiplication), already a
//! dependency of the HFile reader.

use base64::Engine;

/// The CRC-64 Azure computes over `data`.
pub(crate) fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data)
}

/// The `x-ms-content-crc64` header value of a request whose body is `data`.
pub(crate) fn header(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc64(data).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_crc64_nvme_little_endian_in_base64() {
        // The catalogue's check value of CRC-64/NVME (and what azure-storage-extensions'
        // crc64.compute gives for these bytes).
        assert_eq!(crc64(b"123456789"), 0xae8b_1486_0a79_9888);
        assert_eq!(crc64(b""), 0);
        assert_eq!(header(b""), "AAAAAAAAAAA=");
        assert_eq!(
            header(b"123456789"),
            base64::engine::general_purpose::STANDARD
                .encode(0xae8b_1486_0a79_9888u64.to_le_bytes())
        );
        assert_ne!(crc64(b"123456788"), crc64(b"123456789"));
    }
}
